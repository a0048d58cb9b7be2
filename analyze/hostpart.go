package analyze

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze/evidence"
	"github.com/abuse-responder/abuse-responder/analyze/host"
)

// hostPart collects host evidence on this machine, unless it is not the
// implicated instance.
func (an *Analyzer) hostPart(ctx context.Context, n abuse.Notice, a *Analysis) {
	switch an.cfg.HostMode {
	case HostOff:
		a.Host.Note = "host evidence is off ([analyze] host_evidence = \"off\")"
		return
	case HostAuto:
		if id := an.cfg.Identity(ctx); id != "" && !implicated(id, n, a) {
			a.Host.Note = fmt.Sprintf("not collected: this machine is %s, not the implicated instance (collect on that host, or set host_evidence = \"local\")", id)
			return
		}
	}
	a.Host = an.collect(ctx, a)
}

// CollectHost collects host evidence for n on this machine, whatever the
// host mode: the collect command runs where the admin wants it.
func (an *Analyzer) CollectHost(ctx context.Context, n abuse.Notice) Host {
	ref := an.cfg.Now()
	if n.Date != nil {
		ref = *n.Date
	}
	a := Analysis{Targets: nonNil(n.Targets), TargetHosts: nonNil(n.TargetHosts)}
	a.Window = window(n, evidence.Parse(n.Evidence, ref), an.cfg.WindowMargin, ref)
	return an.collect(ctx, &a)
}

func (an *Analyzer) collect(ctx context.Context, a *Analysis) Host {
	o := host.Options{
		AccessLogs: an.cfg.AccessLogs, ModsecLogs: an.cfg.ModsecLogs, WebRoots: an.cfg.WebRoots,
		From: a.Window.From, To: a.Window.To, TargetHosts: a.TargetHosts, ProcRoot: an.cfg.ProcRoot,
		CronPaths: an.cfg.CronPaths, UnitDirs: an.cfg.UnitDirs,
	}
	for _, t := range a.Targets {
		o.Targets = append(o.Targets, t.IP)
		if t.Port != 0 && !containsPort(o.TargetPorts, t.Port) {
			o.TargetPorts = append(o.TargetPorts, t.Port)
		}
	}
	res, err := host.Collect(ctx, o)
	if err != nil {
		return Host{Note: "host evidence failed: " + err.Error(), Findings: []host.Finding{}}
	}
	return Host{Collected: true, Findings: nonNil(res.Findings), Problems: res.Problems}
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
