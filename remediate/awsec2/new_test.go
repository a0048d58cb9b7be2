package awsec2_test

import (
	"context"
	"strings"
	"testing"

	"github.com/abuse-responder/abuse-responder/internal/awstest"
	"github.com/abuse-responder/abuse-responder/remediate/awsec2"
)

func TestNewAssumesTheRole(t *testing.T) {
	w := newFakeWorld(t)
	awstest.Env(t)
	b, err := awsec2.New(context.Background(), awsec2.Options{Region: awstest.Region, EndpointURL: w.fake.URL(),
		RoleARN: "arn:aws:iam::123456789012:role/abuse-responder", ExternalID: "ext-1", MaxAttempts: 1, RuleBand: band})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Plan(context.Background(), input(naclOnly, target("203.0.113.5", "tcp", 22))); err != nil {
		t.Fatalf("Plan: %v", err)
	}
	log := w.fake.CallLog()
	if log[0].Action != "AssumeRole" || log[0].Params.Get("ExternalId") != "ext-1" || log[0].AccessKeyID != awstest.AccessKeyID {
		t.Fatalf("first call = %s %v by %s; want AssumeRole with the external id", log[0].Action, log[0].Params, log[0].AccessKeyID)
	}
	for _, c := range log[1:] {
		if c.Service != "ec2" || !strings.HasPrefix(c.AccessKeyID, awstest.AssumedAccessKeyID) {
			t.Errorf("call %s by %s, want EC2 with the assumed role's key", c.Action, c.AccessKeyID)
		}
	}
	if _, err := awsec2.New(context.Background(), awsec2.Options{}); err == nil {
		t.Error("New without a region succeeded")
	}
}
