package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
	"github.com/abuse-responder/abuse-responder/store"
)

// ec2Blocker is what cmd wires, reduced to one account and region: the
// real engine and the real EC2 backend, talking to the EC2 fake.
type ec2Blocker struct {
	engine   *remediate.Engine
	backends []remediate.Backend
	policy   remediate.Policy
}

func (b *ec2Blocker) Plan(ctx context.Context, c store.Case, an *analyze.Analysis) (remediate.Plan, error) {
	in := remediate.Input{CaseID: c.ID, Type: c.Type, Targets: c.Notice.Targets, Policy: b.policy}
	for _, r := range c.Notice.Resources {
		region := r.Region
		if region == "" && len(c.Notice.Regions) > 0 {
			region = c.Notice.Regions[0] // as cmd's remediation does
		}
		in.Instances = append(in.Instances, remediate.InstanceRef{ID: r.InstanceID, Region: region, Account: c.AccountID})
	}
	p, err := remediate.BuildPlan(ctx, in, b.backends)
	for i := range p.Actions {
		p.Actions[i].Account, p.Actions[i].Region = c.AccountID, "eu-central-1"
	}
	return p, err
}

func (b *ec2Blocker) Apply(ctx context.Context, p remediate.Plan) (remediate.Result, error) {
	return b.engine.Apply(ctx, p)
}

func (b *ec2Blocker) Maintain(ctx context.Context, now time.Time) (remediate.Maintenance, error) {
	return b.engine.Maintain(ctx, now, nil)
}

// blockingHarness runs the daemon in mode with NACL blocks on the EC2
// fake, whose account holds the notice's instance.
func blockingHarness(t *testing.T, mode Mode) (*harness, *awstest.EC2Fake) {
	t.Helper()
	awstest.Env(t)
	f := awstest.SeedWorld(t, awstest.SeedOptions{PublicIP: "198.51.100.23"})
	policy := remediate.Policy{Kinds: []remediate.Kind{remediate.KindNACL}, RuleBand: [2]int32{40, 89}}
	h := newHarness(t)
	h.cfg.Mode = mode
	h.newBlocker = func(st *store.Store) Blocker {
		be, err := awsec2.New(context.Background(), awsec2.Options{Region: "eu-central-1", EndpointURL: f.URL(), MaxAttempts: 1, RuleBand: policy.RuleBand})
		if err != nil {
			t.Fatal(err)
		}
		backends := []remediate.Backend{be}
		return &ec2Blocker{engine: &remediate.Engine{Store: st, Backends: backends}, backends: backends, policy: policy}
	}
	return h, f
}

func denies(f *awstest.EC2Fake) []awstest.ACLEntry {
	acl, _ := f.NetworkACL("acl-a")
	var out []awstest.ACLEntry
	for _, e := range acl.Entries {
		if e.Egress && e.Action == "deny" {
			out = append(out, e)
		}
	}
	return out
}

// TestBlockThenConfirm: the block is applied and verified before the
// summary, which lists it; the reply to AWS lists it with its UTC time.
// A crash right after the EC2 calls, before they are recorded with the
// case, makes no second entry.
func TestBlockThenConfirm(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	r := h.start(crashAt("after-apply", 1))
	if err := h.imap.Deliver(noticeMail(t, noticeAuth)); err != nil {
		t.Fatal(err)
	}
	<-r.crashed
	r.wait(t)
	if n := len(denies(f)); n != 4 {
		t.Fatalf("after the crash: %d deny entries, want 4 (one per address and port)", n)
	}
	creates := count(f.Calls(), "CreateNetworkAclEntry")

	r = h.start(nil)
	h.approve()
	h.waitClosed()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.checkOnce()
	if n := count(f.Calls(), "CreateNetworkAclEntry"); n != creates {
		t.Errorf("the restart made %d more CreateNetworkAclEntry calls, want none", n-creates)
	}
	if n := len(denies(f)); n != 4 {
		t.Errorf("%d deny entries at the end, want 4", n)
	}
	summary := unfold(string(h.sentTo("ops@example.com")[0].Raw))
	reply := unfold(string(h.sentTo(awsAddr)[0].Raw))
	for _, want := range []string{"blocked egress tcp to 203.0.113.10/32 port 23", "verified"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply)
		}
	}
	if !strings.Contains(reply, "UTC: blocked") {
		t.Errorf("reply does not time its actions in UTC:\n%s", reply)
	}
	h.checkStates(t, abuse.StateAnalyzed, abuse.StateBlocked, abuse.StateVerified, abuse.StateAwaitingApproval, abuse.StateApproved)
}

// TestConfirmThenBlock: the summary proposes the plan and nothing changes
// until the confirm; then the plan is applied and the reply lists it.
func TestConfirmThenBlock(t *testing.T) {
	h, f := blockingHarness(t, ModeConfirmThenBlock)
	r := h.startWithNotice()
	summary := unfold(string(h.sentTo("ops@example.com")[0].Raw))
	if !strings.Contains(summary, "a confirm applies this plan") || !strings.Contains(summary, "CreateNetworkAclEntry") {
		t.Errorf("summary does not propose the plan:\n%s", summary)
	}
	if n := count(f.Calls(), "CreateNetworkAclEntry"); n != 0 {
		t.Fatalf("%d CreateNetworkAclEntry calls before the confirm, want none", n)
	}
	h.approve()
	h.waitClosed()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.checkOnce()
	if n := len(denies(f)); n != 4 {
		t.Errorf("%d deny entries after the confirm, want 4", n)
	}
	reply := unfold(string(h.sentTo(awsAddr)[0].Raw))
	if !strings.Contains(reply, "blocked egress tcp to 203.0.113.12/32 port 5900") {
		t.Errorf("reply lacks the applied block:\n%s", reply)
	}
	h.checkStates(t, abuse.StateAwaitingApproval, abuse.StateApproved, abuse.StateBlocked, abuse.StateVerified, abuse.StateReplied)
}

// TestForgedNoticeNeverBlocks: in a blocking mode, a notice that fails
// DMARC is summarised for a human and blocks nothing.
func TestForgedNoticeNeverBlocks(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(t, "dmarc=fail header.from=support.aws.com")); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	r.wait(t)
	if h.caseState(testCase) != abuse.StateNeedsHuman {
		t.Errorf("case state %s, want needs-human", h.caseState(testCase))
	}
	for _, c := range f.Calls() {
		if strings.HasPrefix(c, "Create") || strings.HasPrefix(c, "Modify") || strings.HasPrefix(c, "Describe") {
			t.Errorf("a forged notice made the EC2 call %s", c)
		}
	}
}

func count(calls []string, action string) int {
	n := 0
	for _, c := range calls {
		if c == action {
			n++
		}
	}
	return n
}

// checkStates asserts that the case went through want, in that order
// (other states may come between).
func (h *harness) checkStates(t *testing.T, want ...abuse.State) {
	t.Helper()
	st, err := store.Open(context.Background(), h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []abuse.State
	st.View(context.Background(), func(tx *store.Tx) error {
		trs, err := tx.Transitions(testCase)
		for _, tr := range trs {
			got = append(got, tr.To)
		}
		return err
	})
	i := 0
	for _, s := range got {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("transitions %v, want %v in this order", got, want)
	}
}

// TestMaintenanceRestoresDrift: an ACL entry of ours deleted by hand is
// found by the periodic pass, put back, and the admins are told.
func TestMaintenanceRestoresDrift(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	h.cfg.MaintainEvery = 50 * time.Millisecond
	r := h.startWithNotice()
	gone := denies(f)[0]
	client := ec2.NewFromConfig(awstest.Config(t, f.URL()))
	if _, err := client.DeleteNetworkAclEntry(context.Background(), &ec2.DeleteNetworkAclEntryInput{
		NetworkAclId: aws.String("acl-a"), RuleNumber: aws.Int32(gone.RuleNumber), Egress: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the drift report", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	values := h.gather()
	r.wait(t)
	if values["abuse_responder_block_drift_total"] < 1 || values[`abuse_responder_blocks{kind="nacl",state="verified"}`] != 4 {
		t.Errorf("metrics drift_total %v, verified nacl blocks %v; want at least 1 and 4",
			values["abuse_responder_block_drift_total"], values[`abuse_responder_blocks{kind="nacl",state="verified"}`])
	}
	report := unfold(string(h.sentTo("ops@example.com")[1].Raw))
	if !strings.Contains(report, "drift in case "+testCase) || !strings.Contains(report, "restored:") {
		t.Errorf("maintenance report lacks the drift and the restore:\n%s", report)
	}
	if n := len(denies(f)); n != 4 {
		t.Errorf("%d deny entries after maintenance, want the 4 again", n)
	}
}

// TestBlockRetriesTemporaryFailure: EC2 failing for a while (a 503) leaves
// the case analysed and retried with backoff; once EC2 answers, the block
// is applied once and one summary goes out.
func TestBlockRetriesTemporaryFailure(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	f.FailNext("CreateNetworkAclEntry", "Unavailable", 503, 3)
	r := h.startWithNotice()
	values := h.gather()
	r.wait(t)
	if n := len(denies(f)); n != 4 {
		t.Errorf("%d deny entries, want 4", n)
	}
	if n := len(h.sentTo("ops@example.com")); n != 1 {
		t.Errorf("%d summaries, want 1", n)
	}
	if values["abuse_responder_block_failures_total"] < 1 {
		t.Errorf("block_failures_total = %v, want the failed attempts counted", values["abuse_responder_block_failures_total"])
	}
	if s := h.caseState(testCase); s != abuse.StateAwaitingApproval {
		t.Errorf("case state %s, want awaiting-approval", s)
	}
}

// TestBlockPermanentFailureNeedsHuman: EC2 refusing for good
// (UnauthorizedOperation) hands the case to a human with a summary that
// says why, and nothing is answered.
func TestBlockPermanentFailureNeedsHuman(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	f.FailNext("CreateNetworkAclEntry", "UnauthorizedOperation", 403, 100)
	r := h.startWithNotice()
	r.wait(t)
	if s := h.caseState(testCase); s != abuse.StateNeedsHuman {
		t.Errorf("case state %s, want needs-human", s)
	}
	summary := unfold(string(h.sentTo("ops@example.com")[0].Raw))
	if !strings.Contains(summary, "failed for good") || !strings.Contains(summary, "UnauthorizedOperation") {
		t.Errorf("summary does not say why:\n%s", summary)
	}
	if n := len(h.sentTo(awsAddr)); n != 0 {
		t.Errorf("%d replies to AWS, want none", n)
	}
}

// TestAdditionalReportIsBlocked: AWS writes again about another instance
// of the case; it is blocked too, the admins get the case again with a
// fresh token (the first summary's confirm no longer counts), and the
// reply lists the blocks of both instances.
func TestAdditionalReportIsBlocked(t *testing.T) {
	h, f := blockingHarness(t, ModeBlockThenConfirm)
	addSecondInstance(f)
	r := h.startWithNotice()
	first := messageID(t, h.sentTo("ops@example.com")[0].Raw)
	if err := h.imap.Deliver(testdataMail(t, "testdata/additional.eml", time.Now(), noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the second summary", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	if n := len(denies(f)); n != 6 {
		t.Fatalf("%d deny entries, want 6 (4 for the first instance, 2 for the additional report)", n)
	}
	second := h.sentTo("ops@example.com")[1]
	text := unfold(string(second.Raw))
	for _, want := range []string{"i-0bbbbbbbbbbbbbbb1", "blocked egress tcp to 203.0.113.77/32 port 22", "a confirm of an earlier one no longer counts"} {
		if !strings.Contains(text, want) {
			t.Errorf("second summary lacks %q:\n%s", want, text)
		}
	}

	// The first summary's token is for the older draft: refused.
	if err := h.imap.Deliver(approvalMail(testApprover, first, "confirm", approverAuth)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(h.sentTo(awsAddr)); n != 0 {
		t.Fatalf("a confirm of the first summary sent %d replies, want none", n)
	}
	if err := h.imap.Deliver(approvalMail(testApprover, messageID(t, second.Raw), "confirm", approverAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitClosed()
	r.wait(t)
	reply := unfold(string(h.sentTo(awsAddr)[0].Raw))
	for _, want := range []string{"203.0.113.10/32 port 23", "203.0.113.77/32 port 23"} {
		if !strings.Contains(reply, want) {
			t.Errorf("reply lacks the block of %q:\n%s", want, reply)
		}
	}
}

// TestAdditionalReportJoinsThePlan: in confirm-then-block, an additional
// report's actions join the plan waiting for the confirm; nothing is
// blocked before it, and the confirm of the new summary applies both.
func TestAdditionalReportJoinsThePlan(t *testing.T) {
	h, f := blockingHarness(t, ModeConfirmThenBlock)
	addSecondInstance(f)
	r := h.startWithNotice()
	if err := h.imap.Deliver(testdataMail(t, "testdata/additional.eml", time.Now(), noticeAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the second summary", func() bool { return len(h.sentTo("ops@example.com")) >= 2 })
	if n := len(denies(f)); n != 0 {
		t.Fatalf("%d deny entries before the confirm, want none", n)
	}
	second := h.sentTo("ops@example.com")[1]
	if text := unfold(string(second.Raw)); !strings.Contains(text, "joined the plan") || !strings.Contains(text, "203.0.113.77/32") {
		t.Errorf("second summary does not propose the joined plan:\n%s", text)
	}
	if err := h.imap.Deliver(approvalMail(testApprover, messageID(t, second.Raw), "confirm", approverAuth)); err != nil {
		t.Fatal(err)
	}
	h.waitClosed()
	r.wait(t)
	if n := len(denies(f)); n != 6 {
		t.Errorf("%d deny entries after the confirm, want 6", n)
	}
	if reply := unfold(string(h.sentTo(awsAddr)[0].Raw)); !strings.Contains(reply, "203.0.113.77/32 port 22") {
		t.Errorf("reply lacks the additional report's block:\n%s", reply)
	}
}

// startWithNotice starts a daemon, delivers the notice and waits for the
// first summary.
func (h *harness) startWithNotice() *run {
	h.t.Helper()
	r := h.start(nil)
	if err := h.imap.Deliver(noticeMail(h.t, noticeAuth)); err != nil {
		h.t.Fatal(err)
	}
	h.waitFor("the summary", func() bool { return len(h.sentTo("ops@example.com")) >= 1 })
	return r
}

// addSecondInstance adds the instance that testdata/additional.eml names,
// in the same subnet as the first.
func addSecondInstance(f *awstest.EC2Fake) {
	f.AddInstance(awstest.Instance{ID: "i-0bbbbbbbbbbbbbbb1", VPCID: "vpc-a", SubnetID: "subnet-a", PrivateIP: "10.0.1.6", Groups: []string{"sg-web"}})
	f.AddENI(awstest.ENI{ID: "eni-two", VPCID: "vpc-a", SubnetID: "subnet-a", InstanceID: "i-0bbbbbbbbbbbbbbb1",
		PrivateIPs: []string{"10.0.1.6"}, Groups: []string{"sg-web"}})
}
