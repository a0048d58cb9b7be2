package awsconf_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

const (
	account = "111122223333"
	role    = "arn:aws:iam::111122223333:role/abuse-responder"
)

// The config of an account and region is built once: the second caller
// gets the same credentials cache, so the role is assumed once however
// many clients use it. Another region is another config.
func TestAccountsConfigCached(t *testing.T) {
	awstest.Env(t)
	f := awstest.NewEC2Fake(t)
	a := &awsconf.Accounts{List: []awsconf.Account{{ID: account, RoleARN: role, ExternalID: "x"}}, EndpointURL: f.URL(), MaxAttempts: 1}
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := a.Config(ctx, account, "eu-central-1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c1, err := a.Config(ctx, account, "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := a.Config(ctx, account, "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	if c1.Credentials == nil || c1.Credentials != c2.Credentials {
		t.Fatalf("second Config has credentials %p, first %p: want the same cache", c2.Credentials, c1.Credentials)
	}
	if c1.Region != "eu-central-1" || c1.RetryMaxAttempts != 1 || c1.BaseEndpoint == nil || *c1.BaseEndpoint != f.URL() {
		t.Errorf("config region %q, attempts %d, endpoint %v; want eu-central-1, 1, %s", c1.Region, c1.RetryMaxAttempts, c1.BaseEndpoint, f.URL())
	}
	for _, cfg := range []aws.Config{c1, c2} {
		creds, err := cfg.Credentials.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if creds.AccessKeyID != awstest.AssumedAccessKeyID+"1" {
			t.Errorf("access key %q, want the first assumed role key %s1", creds.AccessKeyID, awstest.AssumedAccessKeyID)
		}
	}
	if n := assumeRoles(f); n != 1 {
		t.Errorf("%d AssumeRole calls for one account and region, want 1", n)
	}

	other, err := a.Config(ctx, account, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	if other.Credentials == c1.Credentials || other.Region != "us-east-1" {
		t.Errorf("us-east-1 config shares eu-central-1's credentials or has region %q", other.Region)
	}
}

func assumeRoles(f *awstest.EC2Fake) int {
	n := 0
	for _, c := range f.CallLog() {
		if c.Service == "sts" && c.Action == "AssumeRole" {
			n++
		}
	}
	return n
}

func TestAccountsNotConfigured(t *testing.T) {
	awstest.Env(t)
	a := &awsconf.Accounts{List: []awsconf.Account{{ID: account}}}
	ctx := context.Background()
	for _, tc := range []struct {
		acct    *awsconf.Accounts
		id      string
		region  string
		message string
	}{
		{a, "444455556666", "eu-central-1", `account "444455556666" is not in [[aws.accounts]]`},
		{a, account, "", "no region for account 111122223333: the notice names none"},
		{nil, account, "eu-central-1", `account "111122223333" is not in [[aws.accounts]]`},
	} {
		_, err := tc.acct.Config(ctx, tc.id, tc.region)
		if !errors.Is(err, awsconf.ErrNotConfigured) || err.Error() != tc.message {
			t.Errorf("Config(%q, %q) = %v; want %q wrapping ErrNotConfigured", tc.id, tc.region, err, tc.message)
		}
		if _, err := tc.acct.Check(tc.id, tc.region); !errors.Is(err, awsconf.ErrNotConfigured) {
			t.Errorf("Check(%q, %q) = %v; want ErrNotConfigured", tc.id, tc.region, err)
		}
	}
	if _, err := a.Config(ctx, account, "eu-central-1"); err != nil {
		t.Errorf("configured account: %v", err)
	}
	if acct, err := a.Check(account, "eu-central-1"); err != nil || acct.ID != account {
		t.Errorf("Check = %+v, %v", acct, err)
	}
}
