package analyze

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
)

// DefaultRemoteBinary is where SSM finds this program on an instance
// when Config.RemoteBinary is "".
const DefaultRemoteBinary = "/usr/local/bin/abuse-responder"

// HostQuery is what `collect --query -` reads: the case's window and
// targets. It is cloud's type, since the same value travels from Analyze
// through SSM to the collect on the instance.
type HostQuery = cloud.CollectQuery

// MaxHostQueryBytes bounds a query; collect --query - reads no further.
const MaxHostQueryBytes = cloud.MaxCollectQueryBytes

// ParseHostQuery decodes one query strictly and validates it.
func ParseHostQuery(data []byte) (HostQuery, error) { return cloud.ParseCollectQuery(data) }

// hostPart collects host evidence where the host mode says: here, or on
// the implicated instance through SSM.
func (an *Analyzer) hostPart(ctx context.Context, n abuse.Notice, a *Analysis) {
	switch an.cfg.HostMode {
	case HostOff:
		a.Host.Note = "host evidence is off ([analyze] host_evidence = \"off\")"
		return
	case HostSSM:
		a.Host = an.collectSSM(ctx, n, a, false)
		return
	case HostAuto:
		if id := an.cfg.Identity(ctx); id != "" && !implicated(id, n, a) {
			// Findings from this machine would blame the wrong one: collect
			// on the implicated instance when SSM can reach it.
			if managedInstance(a.Resources) != nil {
				a.Host = an.collectSSM(ctx, n, a, true)
				return
			}
			a.Host.Note = fmt.Sprintf("not collected: this machine is %s, not the implicated instance (collect on that host, or set host_evidence = \"local\")", id)
			return
		}
	}
	ports, guessed := ownPorts(n, a.Evidence, a.Resources)
	a.Host = an.collect(ctx, a, ports, guessed)
}

// CollectHost collects host evidence for n on this machine, whatever the
// host mode: the collect command runs where the admin wants it.
func (an *Analyzer) CollectHost(ctx context.Context, n abuse.Notice) Host {
	ref := an.cfg.Now()
	if n.Date != nil {
		ref = *n.Date
	}
	a := Analysis{Targets: nonNil(n.Targets), TargetHosts: nonNil(n.TargetHosts)}
	ev := evidence.Parse(n.Evidence, ref)
	a.Window = window(n, ev, an.cfg.WindowMargin, ref)
	ports, guessed := ownPorts(n, ev, nil)
	return an.collect(ctx, &a, ports, guessed)
}

// CollectQuery collects host evidence for q on this machine, whatever the
// host mode: it is what runs on the instance when another one collects
// through SSM, and it shares CollectHost's code path.
func (an *Analyzer) CollectQuery(ctx context.Context, q HostQuery) Host {
	if err := q.Validate(); err != nil {
		return Host{Where: "local", Note: "not collected: " + err.Error(), Findings: []host.Finding{}}
	}
	a := Analysis{Targets: nonNil(q.Targets), TargetHosts: nonNil(q.TargetHosts),
		Window: Window{From: q.From.UTC(), To: q.To.UTC()}}
	return an.collect(ctx, &a, q.OwnPorts, q.OwnPortsGuessed)
}

// collect runs host.Collect here; ownPorts and guessed are
// host.Options.OwnPorts and OwnPortsGuessed.
func (an *Analyzer) collect(ctx context.Context, a *Analysis, ownPorts []uint16, guessed bool) Host {
	o := host.Options{
		AccessLogs: an.cfg.AccessLogs, ModsecLogs: an.cfg.ModsecLogs, WebRoots: an.cfg.WebRoots,
		From: a.Window.From, To: a.Window.To, TargetHosts: a.TargetHosts, ProcRoot: an.cfg.ProcRoot,
		CronPaths: an.cfg.CronPaths, UnitDirs: an.cfg.UnitDirs,
		OwnPorts: ownPorts, OwnPortsGuessed: guessed,
	}
	for _, t := range a.Targets {
		o.Targets = append(o.Targets, t.IP)
		if t.Port != 0 && !containsPort(o.TargetPorts, t.Port) {
			o.TargetPorts = append(o.TargetPorts, t.Port)
		}
	}
	res, err := host.Collect(ctx, o)
	if err != nil {
		return Host{Where: "local", Note: "host evidence failed: " + err.Error(), Findings: []host.Finding{}}
	}
	return Host{Collected: true, Where: "local", Findings: nonNil(res.Findings), Problems: res.Problems}
}

// commonProxyPorts are where open proxies usually listen (squid, HTTP
// alternates, SOCKS, privoxy): checked on an open-proxy notice that names
// no port of ours.
var commonProxyPorts = []uint16{3128, 8080, 8888, 1080, 3129, 8118}

// maxOwnPorts bounds the ports taken from the reporter's text, which is
// untrusted and could list thousands.
const maxOwnPorts = 32

var (
	// reOwnAddrPort is an address with a port: "198.51.100.150:3128" or
	// "[2001:db8::1]:8080".
	reOwnAddrPort = regexp.MustCompile(`(?:\[([0-9A-Fa-f:.]+)\]|\b(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})\b`)
	// reServicePort is a service named by port and protocol, as scanners
	// write it: "also listening: 8080/tcp", "Portmapper (111/udp)".
	reServicePort = regexp.MustCompile(`(?i)\b(\d{1,5})/(?:tcp|udp)\b`)
)

// ownPorts returns the ports on our own addresses that the reporter
// reached, for open-proxy and vulnerability notices: there the reporter
// was the client and we the server, so the port is ours, not a target's
// (FORMATS.md §9: a proxy's own ip:port is ours). guessed is true when the
// notice names none and the common proxy ports stand in. Other notices
// get none: their ports are the targets'.
//
// The evidence parser makes no event of a proxy check ("Open HTTP proxy
// confirmed on 198.51.100.150:3128"), so besides events whose destination
// is ours the text itself is read for our address with a port and for
// "<port>/tcp" phrases.
func ownPorts(n abuse.Notice, ev evidence.Result, found []cloud.Instance) (ports []uint16, guessed bool) {
	if n.Type != abuse.TypeOpenProxy && n.Type != abuse.TypeVulnerability {
		return nil, false
	}
	var ours []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(ours, a.Unmap()) {
			ours = append(ours, a.Unmap())
		}
	}
	for _, r := range n.Resources {
		add(r.PublicIP)
	}
	for _, inst := range found {
		for _, ip := range inst.PublicIPs {
			add(ip)
		}
	}
	isTarget := func(a netip.Addr) bool {
		for _, t := range n.Targets {
			if t.IP.Unmap() == a {
				return true
			}
		}
		return false
	}
	// ourAddr: one of our addresses; when the notice gives none, any
	// address that is not a target (the proxy's own next to the CONNECT
	// destination).
	ourAddr := func(a netip.Addr) bool {
		if len(ours) > 0 {
			return slices.Contains(ours, a)
		}
		return !isTarget(a)
	}
	keep := func(p uint64) {
		if p > 0 && p <= 65535 && len(ports) < maxOwnPorts && !slices.Contains(ports, uint16(p)) {
			ports = append(ports, uint16(p))
		}
	}
	for _, e := range ev.Events {
		if e.Port != 0 && e.Dest.IsValid() && ourAddr(e.Dest.Unmap()) {
			keep(uint64(e.Port))
		}
	}
	for _, m := range reOwnAddrPort.FindAllStringSubmatch(n.Evidence, -1) {
		a, err := netip.ParseAddr(m[1] + m[2]) // one of the two is empty
		if err != nil || !ourAddr(a.Unmap()) {
			continue
		}
		p, _ := strconv.ParseUint(m[3], 10, 32)
		keep(p)
	}
	for _, m := range reServicePort.FindAllStringSubmatch(n.Evidence, -1) {
		p, _ := strconv.ParseUint(m[1], 10, 32)
		keep(p)
	}
	if len(ports) == 0 && n.Type == abuse.TypeOpenProxy {
		return slices.Clone(commonProxyPorts), true
	}
	return ports, false
}

// collectSSM runs collect on the implicated instance through SSM Run
// Command. With managedOnly it picks only an instance SSM is known to
// manage; else the first one found, unless SSM is known not to manage it.
func (an *Analyzer) collectSSM(ctx context.Context, n abuse.Notice, a *Analysis, managedOnly bool) Host {
	none := []host.Finding{}
	inst := managedInstance(a.Resources)
	if inst == nil && !managedOnly {
		inst = foundInstance(a.Resources)
	}
	if inst == nil {
		return Host{Note: "not collected: host_evidence = \"ssm\" needs the implicated instance found in EC2 (see the problems)", Findings: none}
	}
	where := "ssm:" + inst.InstanceID
	if inst.SSMManaged != nil && !*inst.SSMManaged {
		p := inst.InstanceID + " is not managed by SSM (no agent registered, or no instance profile allowing it)"
		return Host{Where: where, Note: "not collected: " + p, Findings: none, Problems: []string{p}}
	}
	failed := func(err error) Host {
		return Host{Where: where, Note: "not collected on " + inst.InstanceID + " through SSM", Findings: none,
			Problems: []string{err.Error()}}
	}
	cfg, err := an.aws.Config(ctx, n.AccountID, inst.Region)
	if err != nil {
		return failed(err)
	}
	c := cloud.NewClientsFromConfig(cfg)
	ports, guessed := ownPorts(n, a.Evidence, a.Resources)
	q, err := json.Marshal(HostQuery{CaseID: n.CaseID, From: a.Window.From, To: a.Window.To,
		Targets: a.Targets, TargetHosts: a.TargetHosts, OwnPorts: ports, OwnPortsGuessed: guessed})
	if err != nil {
		return failed(fmt.Errorf("encode the query: %w", err))
	}
	binary := an.cfg.RemoteBinary
	if binary == "" {
		binary = DefaultRemoteBinary
	}
	out, err := c.RunCollect(ctx, inst.InstanceID, q, binary)
	if err != nil {
		return failed(err)
	}
	var remote Host
	if err := json.Unmarshal(out, &remote); err != nil {
		return failed(fmt.Errorf("the output of %s collect on %s is not its JSON: %w", binary, inst.InstanceID, err))
	}
	remote.Where, remote.Findings = where, nonNil(remote.Findings)
	return remote
}

// managedInstance is the first implicated instance SSM is known to manage.
func managedInstance(list []cloud.Instance) *cloud.Instance {
	for i, r := range list {
		if r.Found && r.InstanceID != "" && r.SSMManaged != nil && *r.SSMManaged {
			return &list[i]
		}
	}
	return nil
}

// foundInstance is the first implicated instance found in EC2.
func foundInstance(list []cloud.Instance) *cloud.Instance {
	for i, r := range list {
		if r.Found && r.InstanceID != "" {
			return &list[i]
		}
	}
	return nil
}

// implicated reports whether the instance id is one the notice names, or
// one that resolving its addresses found.
func implicated(id string, n abuse.Notice, a *Analysis) bool {
	for _, r := range n.Resources {
		if r.InstanceID == id {
			return true
		}
	}
	for _, r := range a.Resources {
		if r.InstanceID == id {
			return true
		}
	}
	return false
}

func containsPort(list []uint16, p uint16) bool {
	for _, q := range list {
		if q == p {
			return true
		}
	}
	return false
}

// metadataAddr is the EC2 instance metadata service.
var metadataAddr = netip.MustParseAddr("169.254.169.254")

// metadataInstanceID asks IMDSv2 for this machine's instance ID, briefly:
// off EC2 nothing answers, and the analysis must not wait for it.
func metadataInstanceID(ctx context.Context) string {
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	base := "http://" + metadataAddr.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/latest/api/token", nil)
	if err != nil {
		return ""
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	token, ok := fetch(req)
	if !ok {
		return ""
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	if err != nil {
		return ""
	}
	req.Header.Set("X-aws-ec2-metadata-token", token)
	id, ok := fetch(req)
	if !ok || !strings.HasPrefix(id, "i-") {
		return ""
	}
	return id
}

func fetch(req *http.Request) (string, bool) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}
