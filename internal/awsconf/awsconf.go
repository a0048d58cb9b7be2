// Package awsconf builds the aws.Config that every AWS client of the
// program uses, so that analysis and remediation reach an account the same
// way: the default credential chain or an assumed role, one endpoint for
// every service (STS included) when an emulator stands in for AWS.
package awsconf

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Options says how to reach one account in one region.
type Options struct {
	Region string
	// EndpointURL is "" for AWS; else every client goes there, STS (for
	// the assume-role) included, e.g. a moto_server.
	EndpointURL string
	// RoleARN is the role to assume in the account; "" uses the default
	// credential chain (AWS_* variables, shared files, instance role).
	RoleARN    string
	ExternalID string
	// MaxAttempts is the SDK's attempts per call; 0 keeps the SDK default
	// (the standard retryer, which retries throttling with backoff).
	MaxAttempts int
}

// Load builds the config for o. With a RoleARN the credentials are fetched
// from STS on first use and refreshed before they expire, so Load itself
// makes no call.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	if o.Region == "" {
		return aws.Config{}, fmt.Errorf("aws config: no region")
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(o.Region)}
	if o.EndpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(o.EndpointURL))
	}
	// Only a positive value is passed on: the SDK would read 0 as "no
	// setting" today, but keeping the default must not depend on that.
	if o.MaxAttempts > 0 {
		opts = append(opts, config.WithRetryMaxAttempts(o.MaxAttempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws config for %s: %w", o.Region, err)
	}
	if o.RoleARN != "" {
		// sts.NewFromConfig takes BaseEndpoint from cfg, so with an
		// EndpointURL the assume-role goes to the emulator too.
		provider := stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			if o.ExternalID != "" {
				ao.ExternalID = aws.String(o.ExternalID)
			}
			ao.RoleSessionName = "abuse-responder"
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	return cfg, nil
}
