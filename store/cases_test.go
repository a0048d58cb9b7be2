package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
)

var t0 = time.Date(2026, 4, 14, 3, 0, 0, 0, time.UTC)

// fullNotice sets every field of abuse.Notice; TestNoticeFixtureIsFull
// fails when a field is added and not set here, so the round trip below
// keeps covering every field.
func fullNotice() abuse.Notice {
	abuseAt := time.Date(2026, 4, 14, 1, 47, 2, 0, time.UTC)
	date := time.Date(2026, 4, 14, 5, 12, 9, 500, time.FixedZone("", 2*3600)) // offset kept as evidence
	replyBy := date.Add(abuse.ReplyWindow)
	return abuse.Notice{
		Provider: "aws", Stage: abuse.StageFinal, CaseID: "13051177201-1", AccountID: "111122223333",
		Type: abuse.TypePortScan, ReportedActivity: "Port Scanning",
		Regions:   []string{"eu-central-1", "us-east-1"},
		Resources: []abuse.Resource{{InstanceID: "i-0a1b2c3d4e5f60718", PublicIP: "198.51.100.23", Region: "eu-central-1"}},
		AbuseTime: &abuseAt,
		Targets: []abuse.Target{
			{IP: netip.MustParseAddr("203.0.113.10"), Port: 23, Protocol: "tcp"},
			{IP: netip.MustParseAddr("2001:db8::1"), Port: 0, Protocol: ""},
			{},
		},
		TargetHosts: []string{"shop.example.org"},
		AWSActions:  []string{"Blocked OUTBOUND TCP traffic from instance to remote hosts on port 22"},
		Sender:      "trustandsafety@support.aws.com", MessageID: "<8f2c@amazon.com>",
		Subject: "Your AWS Abuse Report [13051177201-1] [AWS ID 111122223333]",
		Date:    &date, ReplyBy: &replyBy, Forwarded: true,
		ReplyTo:    "abuse-reply@amazon.com",
		References: []string{"<first@amazon.com>", "<second@amazon.com>"},
		Evidence:   "203.0.113.10 - - [14/Apr/2026:01:47:02 +0000] \"GET /\" ; rm -rf / `id` \x00 ünïcode",
	}
}

func TestNoticeFixtureIsFull(t *testing.T) {
	v := reflect.ValueOf(fullNotice())
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("fullNotice().%s is zero: set it so the round trip covers it", v.Type().Field(i).Name)
		}
	}
}

// sameNotice compares notices field by field, times by instant and offset.
func sameNotice(t *testing.T, call string, got, want abuse.Notice) {
	t.Helper()
	for _, p := range []struct {
		name      string
		got, want **time.Time
	}{{"AbuseTime", &got.AbuseTime, &want.AbuseTime}, {"Date", &got.Date, &want.Date}, {"ReplyBy", &got.ReplyBy, &want.ReplyBy}} {
		g, w := *p.got, *p.want
		if (g == nil) != (w == nil) || (g != nil && (!g.Equal(*w) || g.Format(time.RFC3339Nano) != w.Format(time.RFC3339Nano))) {
			t.Errorf("%s: Notice.%s = %v, want %v", call, p.name, g, w)
		}
		*p.got, *p.want = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: Notice =\n%+v\nwant\n%+v", call, got, want)
	}
}

func TestCaseRoundTrip(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	n := fullNotice()
	c := Case{
		ID: n.CaseID, State: abuse.StateReceived, AccountID: n.AccountID, Type: n.Type,
		Activity: n.ReportedActivity, ReplyBy: *n.ReplyBy, Notice: n, NoticeMessageID: n.MessageID,
		Urgent: true, PlanHash: "h1", AdminNote: "fixed\nthanks", Approver: "alice@example.com",
	}
	msgID, _, err := s.AddMessage(context.Background(), Message{Mailbox: "INBOX", UIDValidity: 1, UID: 1, Raw: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.CreateCase(c, "notice"); err != nil {
			return err
		}
		return tx.AddNotice(c.ID, msgID, n)
	})
	view(t, s, func(tx *Tx) error {
		got, ok, err := tx.Case(c.ID)
		if err != nil || !ok {
			t.Fatalf("Case(%s) = %v, %v", c.ID, ok, err)
		}
		sameNotice(t, "Case", got.Notice, n)
		want := c
		want.ReplyBy = c.ReplyBy.UTC()
		want.CreatedAt, want.UpdatedAt = t0.Add(2*time.Second), t0.Add(2*time.Second)
		got.Notice, want.Notice = abuse.Notice{}, abuse.Notice{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Case(%s) =\n%+v\nwant\n%+v", c.ID, got, want)
		}
		notices, err := tx.Notices(c.ID)
		if err != nil || len(notices) != 1 {
			t.Fatalf("Notices(%s) = %d notices, %v, want 1", c.ID, len(notices), err)
		}
		if cn := notices[0]; cn.MessageID != msgID || cn.Stage != abuse.StageFinal || cn.CaseID != c.ID {
			t.Errorf("Notices(%s)[0] = message %d stage %s, want %d final", c.ID, cn.MessageID, cn.Stage, msgID)
		}
		sameNotice(t, "Notices", notices[0].Notice, fullNotice())
		return nil
	})
}

func TestCaseLifeCycle(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	ctx := context.Background()
	update(t, s, func(tx *Tx) error {
		return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived, PlanHash: "h0"}, "notice <n1>")
	})

	steps := []struct {
		to     abuse.State
		reason string
	}{
		{abuse.StateParsed, "parsed"},
		{abuse.StateAnalyzed, "confirmed: cron job"},
		{abuse.StateBlocked, "nacl acl-1 203.0.113.10/32"},
	}
	for _, st := range steps {
		update(t, s, func(tx *Tx) error { return tx.Transition("c1", st.to, st.reason) })
	}
	update(t, s, func(tx *Tx) error {
		c, _, err := tx.Case("c1")
		if err != nil {
			return err
		}
		c.State = abuse.StateClosed // SaveCase must not move the state
		c.PlanHash = "h1"
		return tx.SaveCase(c)
	})

	msg, _, _ := s.AddMessage(ctx, Message{Raw: []byte("reminder")})
	errs := map[string]error{}
	err := s.Update(ctx, func(tx *Tx) error {
		errs["CreateCase(c1) again"] = tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "dup")
		errs["Transition(missing)"] = tx.Transition("missing", abuse.StateParsed, "")
		errs["SaveCase(missing)"] = tx.SaveCase(Case{ID: "missing"})
		errs["AddNotice(missing case)"] = tx.AddNotice("missing", 0, abuse.Notice{})
		// The same mail joining the same case twice is recorded once.
		errs["AddNotice(c1, msg) 1"] = tx.AddNotice("c1", msg, abuse.Notice{Stage: abuse.StageReminder})
		errs["AddNotice(c1, msg) 2"] = tx.AddNotice("c1", msg, abuse.Notice{Stage: abuse.StageReminder})
		return nil
	})
	if err != nil {
		t.Fatalf("Update = %v", err)
	}
	for call, want := range map[string]error{
		"CreateCase(c1) again": ErrExists, "Transition(missing)": ErrNotFound, "SaveCase(missing)": ErrNotFound,
	} {
		if !errors.Is(errs[call], want) {
			t.Errorf("%s = %v, want %v", call, errs[call], want)
		}
	}
	if errs["AddNotice(missing case)"] == nil {
		t.Errorf("AddNotice(missing case) = nil, want a foreign key error")
	}
	for _, call := range []string{"AddNotice(c1, msg) 1", "AddNotice(c1, msg) 2"} {
		if errs[call] != nil {
			t.Errorf("%s = %v, want nil", call, errs[call])
		}
	}

	view(t, s, func(tx *Tx) error {
		c, _, _ := tx.Case("c1")
		if c.State != abuse.StateBlocked || c.PlanHash != "h1" {
			t.Errorf("Case(c1) = state %s plan %s, want blocked h1", c.State, c.PlanHash)
		}
		if !c.CreatedAt.Equal(t0.Add(time.Second)) || !c.UpdatedAt.After(c.CreatedAt) {
			t.Errorf("Case(c1) created %v updated %v, want created %v, updated later", c.CreatedAt, c.UpdatedAt, t0.Add(time.Second))
		}
		got, err := tx.Transitions("c1")
		if err != nil {
			t.Fatalf("Transitions(c1) = %v", err)
		}
		want := []Transition{{"c1", "", abuse.StateReceived, "notice <n1>", t0.Add(time.Second)}}
		from := abuse.StateReceived
		for i, st := range steps {
			want = append(want, Transition{"c1", from, st.to, st.reason, t0.Add(time.Duration(i+2) * time.Second)})
			from = st.to
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Transitions(c1) =\n%v\nwant\n%v", got, want)
		}
		if ns, err := tx.Notices("c1"); err != nil || len(ns) != 1 {
			t.Errorf("Notices(c1) = %d, %v, want 1 (AddNotice twice for one mail)", len(ns), err)
		}
		if tr, err := tx.Transitions("missing"); err != nil || len(tr) != 0 {
			t.Errorf("Transitions(missing) = %v, %v, want none", tr, err)
		}
		return nil
	})
}

func TestCases(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	states := map[string]abuse.State{"a": abuse.StateAwaitingApproval, "b": abuse.StateNeedsHuman, "c": abuse.StateAwaitingApproval, "d": abuse.StateClosed}
	for _, id := range []string{"c", "a", "d", "b"} { // created in this order
		update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: id, State: states[id]}, "") })
	}
	for _, c := range []struct {
		states []abuse.State
		want   []string
	}{
		{nil, []string{"c", "a", "d", "b"}},
		{[]abuse.State{abuse.StateAwaitingApproval}, []string{"c", "a"}},
		{[]abuse.State{abuse.StateNeedsHuman, abuse.StateClosed}, []string{"d", "b"}},
		{[]abuse.State{abuse.StateReplied}, nil},
	} {
		view(t, s, func(tx *Tx) error {
			cs, err := tx.Cases(CaseFilter{States: c.states})
			var got []string
			for _, c := range cs {
				got = append(got, c.ID)
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("Cases(%v) = %v, %v, want %v", c.states, got, err, c.want)
			}
			return nil
		})
	}
}

func TestEffects(t *testing.T) {
	s := openTest(t)
	clock(s, t0)
	update(t, s, func(tx *Tx) error { return tx.CreateCase(Case{ID: "c1", State: abuse.StateReceived}, "") })
	for i, c := range []struct {
		e    Effect
		want bool
	}{
		{Effect{Key: "c1:approval:h1", CaseID: "c1", Kind: "approval", Detail: "alice"}, true},
		{Effect{Key: "c1:approval:h1", CaseID: "c1", Kind: "approval", Detail: "mallory"}, false},
		{Effect{Key: "c1:reply", CaseID: "c1", Kind: "reply", At: t0.Add(time.Hour)}, true},
		{Effect{Key: "alert:1", Kind: "alert"}, true},
	} {
		var got bool
		update(t, s, func(tx *Tx) (err error) { got, err = tx.RecordEffect(c.e); return err })
		if got != c.want {
			t.Errorf("RecordEffect #%d (%s) = %v, want %v", i, c.e.Key, got, c.want)
		}
	}
	view(t, s, func(tx *Tx) error {
		e, ok, err := tx.Effect("c1:approval:h1")
		if want := (Effect{"c1:approval:h1", "c1", "approval", "alice", t0.Add(2 * time.Second)}); !ok || err != nil || e != want {
			t.Errorf("Effect(c1:approval:h1) = %+v, %v, %v, want %+v (the first one)", e, ok, err, want)
		}
		if _, ok, err := tx.Effect("nope"); ok || err != nil {
			t.Errorf("Effect(nope) = %v, %v, want absent", ok, err)
		}
		es, err := tx.Effects("c1")
		if err != nil || len(es) != 2 || es[0].Key != "c1:approval:h1" || es[1].Key != "c1:reply" || !es[1].At.Equal(t0.Add(time.Hour)) {
			t.Errorf("Effects(c1) = %+v, %v, want approval then reply", es, err)
		}
		if es, err := tx.Effects(""); err != nil || len(es) != 1 || es[0].Key != "alert:1" {
			t.Errorf("Effects(\"\") = %+v, %v, want alert:1", es, err)
		}
		return nil
	})
	err := s.Update(context.Background(), func(tx *Tx) error {
		_, err := tx.RecordEffect(Effect{Key: "x", CaseID: "missing"})
		return err
	})
	if err == nil {
		t.Errorf("RecordEffect(case missing) = nil, want a foreign key error")
	}
}

func TestAnalyses(t *testing.T) {
	st := openTest(t)
	ctx := context.Background()
	err := st.Update(ctx, func(tx *Tx) error {
		if err := tx.CreateCase(Case{ID: "1-1", State: abuse.StateReceived}, "test"); err != nil {
			return err
		}
		if _, ok, err := tx.LatestAnalysis("1-1"); err != nil || ok {
			return fmt.Errorf("LatestAnalysis before any = %v, %v; want none", ok, err)
		}
		if err := tx.AddAnalysis(Analysis{CaseID: "1-1", Verdict: "inconclusive", Doc: []byte(`{"v":1}`)}); err != nil {
			return err
		}
		return tx.AddAnalysis(Analysis{CaseID: "1-1", Verdict: "confirmed", Doc: []byte(`{"v":2}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(ctx, func(tx *Tx) error {
		a, ok, err := tx.LatestAnalysis("1-1")
		if err != nil || !ok {
			return fmt.Errorf("LatestAnalysis = %v, %v", ok, err)
		}
		if a.Verdict != "confirmed" || string(a.Doc) != `{"v":2}` || a.At.IsZero() {
			return fmt.Errorf("LatestAnalysis = %+v, want the second one", a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestEffectsOfKind(t *testing.T) {
	st := openTest(t)
	ctx := context.Background()
	err := st.Update(ctx, func(tx *Tx) error {
		for _, id := range []string{"1-1", "2-1"} {
			if err := tx.CreateCase(Case{ID: id, State: abuse.StateReceived}, "test"); err != nil {
				return err
			}
		}
		for _, e := range []Effect{{Key: "1-1:extra:5", CaseID: "1-1", Kind: "extra-report"}, {Key: "1-1:reply", CaseID: "1-1", Kind: "reply"},
			{Key: "2-1:extra:9", CaseID: "2-1", Kind: "extra-report"}} {
			if _, err := tx.RecordEffect(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.View(ctx, func(tx *Tx) error {
		got, err := tx.EffectsOfKind("extra-report")
		if err != nil || len(got) != 2 || got[0].Key != "1-1:extra:5" || got[0].CaseID != "1-1" || got[1].CaseID != "2-1" {
			t.Errorf("EffectsOfKind(extra-report) = %+v, %v; want both cases' in order", got, err)
		}
		return nil
	})
}
