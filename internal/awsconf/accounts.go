package awsconf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ErrNotConfigured is what Accounts.Config's errors wrap when the account
// is not configured or the region is empty: no retry cures it, so callers
// may treat it as permanent.
var ErrNotConfigured = errors.New("account or region not configured")

// notConfigured is an ErrNotConfigured with its detail as the message.
type notConfigured struct{ msg string }

func (e *notConfigured) Error() string        { return e.msg }
func (e *notConfigured) Is(target error) bool { return target == ErrNotConfigured }

// Account is one configured AWS account ([[aws.accounts]]).
type Account struct {
	ID string
	// RoleARN is the role to assume in the account; "" uses the default
	// credential chain (AWS_* variables, shared files, instance role).
	RoleARN    string
	ExternalID string
}

// Accounts are the accounts the program may reach, and the aws.Config of
// each account and region, built with Load on first use and kept: every
// client made from it shares its credentials cache, so an assumed role is
// asked for once per account and region, not once per client. The fields
// must not change once Config has been called; it is safe for concurrent
// use. A nil *Accounts has no account.
type Accounts struct {
	List []Account
	// EndpointURL and MaxAttempts are Options'.
	EndpointURL string
	MaxAttempts int

	mu      sync.Mutex
	configs map[[2]string]aws.Config // by {account, region}
}

// Account returns the configured account id.
func (a *Accounts) Account(id string) (Account, bool) {
	if a == nil {
		return Account{}, false
	}
	i := slices.IndexFunc(a.List, func(acct Account) bool { return acct.ID == id })
	if i < 0 {
		return Account{}, false
	}
	return a.List[i], true
}

// Check returns the account when it is configured and region is set;
// else an error that wraps ErrNotConfigured. It makes no call.
func (a *Accounts) Check(account, region string) (Account, error) {
	acct, ok := a.Account(account)
	if !ok {
		return Account{}, &notConfigured{fmt.Sprintf("account %q is not in [[aws.accounts]]", account)}
	}
	if region == "" {
		return Account{}, &notConfigured{fmt.Sprintf("no region for account %s: the notice names none", account)}
	}
	return acct, nil
}

// Config returns the aws.Config of account in region, built with Load on
// first use and the same (credentials cache included) afterwards. An
// account not in List or an empty region is an error that wraps
// ErrNotConfigured; Load's errors are returned as they are and not kept.
func (a *Accounts) Config(ctx context.Context, account, region string) (aws.Config, error) {
	acct, err := a.Check(account, region)
	if err != nil {
		return aws.Config{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	key := [2]string{account, region}
	if cfg, ok := a.configs[key]; ok {
		return cfg, nil
	}
	cfg, err := Load(ctx, Options{Region: region, EndpointURL: a.EndpointURL,
		RoleARN: acct.RoleARN, ExternalID: acct.ExternalID, MaxAttempts: a.MaxAttempts})
	if err != nil {
		return aws.Config{}, err
	}
	if a.configs == nil {
		a.configs = map[[2]string]aws.Config{}
	}
	a.configs[key] = cfg
	return cfg, nil
}
