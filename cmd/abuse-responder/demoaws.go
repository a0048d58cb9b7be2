package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/ec2emu"
	"github.com/abuse-responder/abuse-responder/store"
)

// The demo's AWS account is internal/ec2emu: an in-process emulator of
// the EC2, CloudWatch Logs, STS and SSM APIs, seeded with the instance of
// the built-in notice. The real SDK clients, the real analysis and the
// real NACL backend run against it, so the demo shows the blocking too,
// and no AWS account is touched.

// The demo account's resources. The instance, region and public address
// are the built-in notice's (demodata/notice.eml); the rest is made up.
const (
	demoAccount      = "111122223333"
	demoRegion       = "eu-central-1"
	demoInstance     = "i-0a1b2c3d4e5f60718"
	demoPublicIP     = "198.51.100.23"
	demoPrivateIP    = "10.0.1.23"
	demoVPC          = "vpc-0d3e1f2a3b4c5d6e7"
	demoSubnet       = "subnet-0c1d2e3f4a5b6c7d8"
	demoENI          = "eni-0f1e2d3c4b5a69788"
	demoACL          = "acl-0b1c2d3e4f5a6b7c8"
	demoSG           = "sg-0a9b8c7d6e5f4a3b2"
	demoFlowLogGroup = "vpc-flow-logs"
	demoCaseID       = "13051177201-1"
)

// demoRuleBand is the NACL rule numbers the demo's remediation may use.
var demoRuleBand = [2]int{40, 89}

// demoAWS is the running emulator and what it takes to undo the demo's
// process environment.
type demoAWS struct {
	emu        *ec2emu.EC2Fake
	restoreEnv func()
}

// startDemoAWS starts the emulator, seeds it and points the SDK's
// credential chain at static demo credentials. Close undoes both.
func startDemoAWS() (*demoAWS, error) {
	emu, err := ec2emu.Start()
	if err != nil {
		return nil, fmt.Errorf("start the EC2 emulator: %w", err)
	}
	seedDemoAWS(emu)
	return &demoAWS{emu: emu, restoreEnv: setDemoCredentials()}, nil
}

// Close stops the emulator and restores the environment. Call it after
// the daemon stopped, as the daemon's clients read the environment.
func (d *demoAWS) Close() {
	d.emu.Close()
	d.restoreEnv()
}

// URL is the endpoint every SDK client of the demo uses.
func (d *demoAWS) URL() string { return d.emu.URL() }

// ACL returns the demo subnet's network ACL entries as the emulator holds
// them now.
func (d *demoAWS) ACL() []ec2emu.ACLEntry {
	acl, _ := d.emu.NetworkACL(demoACL)
	return acl.Entries
}

// config is the daemon's configuration for the demo, as a config file
// with an [[aws.accounts]] entry and a [remediate] section would give
// it: block-then-confirm with NACL egress denies in rules 40–89.
func (d *demoAWS) config() *config.Config {
	return &config.Config{
		AWS: config.AWS{Regions: []string{demoRegion}, EndpointURL: d.URL(),
			Accounts: []config.AWSAccount{{ID: demoAccount}}},
		Remediate: config.Remediate{Mode: config.ModeBlockThenConfirm, Actions: []config.Action{config.ActionNACL},
			NACLRuleBand: demoRuleBand, BlockTTL: 168 * time.Hour},
	}
}

// seedDemoAWS puts the notice's instance into the emulator: its ENI and
// subnet, the subnet's network ACL (egress allowed to all at rule 100, as
// in a default ACL), its security group, and a VPC flow log whose records
// show the scans of the reported targets around the abuse time.
func seedDemoAWS(emu *ec2emu.EC2Fake) {
	emu.AddInstance(ec2emu.Instance{ID: demoInstance, VPCID: demoVPC, SubnetID: demoSubnet,
		PrivateIP: demoPrivateIP, PublicIP: demoPublicIP, Groups: []string{demoSG},
		Tags:       map[string]string{"Name": "shop-web-1"},
		LaunchTime: time.Date(2026, 3, 2, 9, 15, 0, 0, time.UTC)})
	emu.AddENI(ec2emu.ENI{ID: demoENI, VPCID: demoVPC, SubnetID: demoSubnet, InstanceID: demoInstance,
		PrivateIPs: []string{demoPrivateIP}, PublicIP: demoPublicIP, Groups: []string{demoSG},
		Description: "Primary network interface"})
	emu.AddNetworkACL(ec2emu.NetworkACL{ID: demoACL, VPCID: demoVPC, Default: true, Subnets: []string{demoSubnet},
		Entries: slices.Clone(demoACLEntries)})
	emu.AddSecurityGroup(ec2emu.SecurityGroup{ID: demoSG, Name: "shop-web", VPCID: demoVPC,
		Ingress: []ec2emu.SGRule{{Protocol: "tcp", FromPort: 443, ToPort: 443, CIDRs: []string{"0.0.0.0/0"}},
			{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"0.0.0.0/0"}}},
		Egress: []ec2emu.SGRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}})
	emu.AddFlowLog(ec2emu.FlowLog{ID: "fl-04a5b6c7d8e9f0a1b", ResourceID: demoVPC, LogGroup: demoFlowLogGroup})

	// Default-format (version 2) records, one a minute, from the ENI to
	// the report's targets; the notice's abuse time is 01:47:02 UTC.
	var events []ec2emu.LogEvent
	for i, f := range []struct {
		dst     string
		port    int
		packets int
	}{
		{"203.0.113.10", 23, 3}, {"203.0.113.10", 2323, 3}, {"203.0.113.11", 445, 4},
		{"203.0.113.12", 5900, 3}, {"203.0.113.10", 23, 6}, {"203.0.113.11", 445, 2},
	} {
		end := time.Date(2026, 4, 14, 1, 44+i, 30, 0, time.UTC)
		msg := fmt.Sprintf("2 %s %s %s %s %d %d 6 %d %d %d %d ACCEPT OK", demoAccount, demoENI, demoPrivateIP,
			f.dst, 41000+i*17, f.port, f.packets, f.packets*60, end.Add(-time.Minute).Unix(), end.Unix())
		events = append(events, ec2emu.LogEvent{Stream: demoENI + "-all", Timestamp: end, Message: msg})
	}
	emu.PutLogEvents(demoFlowLogGroup, events...)
}

// demoACLEntries is the subnet's network ACL before the demo blocks
// anything: AWS's default ACL, all allowed at 100, the implicit deny at
// 32767 ("*"), both ways.
var demoACLEntries = []ec2emu.ACLEntry{
	{RuleNumber: 100, Egress: true, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
	{RuleNumber: 32767, Egress: true, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
	{RuleNumber: 100, Egress: false, Action: "allow", Protocol: "-1", CIDR: "0.0.0.0/0"},
	{RuleNumber: 32767, Egress: false, Action: "deny", Protocol: "-1", CIDR: "0.0.0.0/0"},
}

// setDemoCredentials makes the SDK's default credential chain (which
// cloud.NewClients and awsec2.New use; they take no credentials of their
// own) find static demo credentials and nothing else: no shared config or
// credentials file (the user's ~/.aws is never read), no profile, no
// instance metadata, no endpoint from the environment. It changes only
// this process's environment, and the returned func puts it back.
func setDemoCredentials() (restore func()) {
	vars := map[string]string{
		"AWS_ACCESS_KEY_ID":           "AKIDABUSERESPONDERDEMO",
		"AWS_SECRET_ACCESS_KEY":       "demo-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		// An endpoint from the environment would send a client elsewhere
		// (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would also drop the
		// emulator's endpoint given in code, so these are unset instead).
		"AWS_ENDPOINT_URL":                    "",
		"AWS_ENDPOINT_URL_EC2":                "",
		"AWS_ENDPOINT_URL_STS":                "",
		"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS":    "",
		"AWS_ENDPOINT_URL_SSM":                "",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "",
	}
	type saved struct {
		value string
		set   bool
	}
	old := map[string]saved{}
	for k, v := range vars {
		prev, set := os.LookupEnv(k)
		old[k] = saved{prev, set}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	return func() {
		for k, s := range old {
			if s.set {
				os.Setenv(k, s.value)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// printACL prints the egress entries of a network ACL as a small table,
// in rule order as EC2 evaluates them, marking those in the demo's band.
func printACL(w io.Writer, entries []ec2emu.ACLEntry) {
	egress := slices.DeleteFunc(slices.Clone(entries), func(e ec2emu.ACLEntry) bool { return !e.Egress })
	slices.SortFunc(egress, func(a, b ec2emu.ACLEntry) int { return int(a.RuleNumber - b.RuleNumber) })
	fmt.Fprintf(w, "   %-6s %-6s %-18s %-8s %s\n", "rule", "action", "cidr", "protocol", "ports")
	for _, e := range egress {
		rule := strconv.Itoa(int(e.RuleNumber))
		if e.RuleNumber == 32767 {
			rule = "*" // the implicit last rule, as the console shows it
		}
		cidr := e.CIDR
		if cidr == "" {
			cidr = e.IPv6CIDR
		}
		note := ""
		if int(e.RuleNumber) >= demoRuleBand[0] && int(e.RuleNumber) <= demoRuleBand[1] {
			note = "  <- abuse-responder's band"
		}
		line := fmt.Sprintf("   %-6s %-6s %-18s %-8s %-6s%s", rule, e.Action, cidr, cloud.ProtocolName(e.Protocol), aclPorts(e), note)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// aclPorts is an entry's port range; ports mean something for TCP and
// UDP only.
func aclPorts(e ec2emu.ACLEntry) string {
	if e.Protocol != "6" && e.Protocol != "17" {
		return "all"
	}
	if e.FromPort == e.ToPort {
		return strconv.Itoa(int(e.FromPort))
	}
	return fmt.Sprintf("%d-%d", e.FromPort, e.ToPort)
}

// printBlocks prints blocks as `abuse-responder blocks` does.
func printBlocks(w io.Writer, blocks []store.Block) {
	if len(blocks) == 0 {
		fmt.Fprintln(w, "no active blocks")
	}
	for _, b := range blocks {
		fmt.Fprintf(w, "%-9s %-14s %s  applied %s  expires %s\n    %s\n", b.State, b.Kind, b.Key,
			fmtTimeOr(b.AppliedAt, "-"), fmtTimeOr(b.ExpiresAt, "never"), b.Check)
	}
}
