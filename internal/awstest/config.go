package awstest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Test credentials. The doubles ignore signatures, but the EC2 fake reads
// the access key id from each request's Authorization header, so tests can
// tell which credentials a client used.
const (
	AccessKeyID     = "AKIDAWSTEST"
	SecretAccessKey = "awstest-secret"
	Region          = "us-east-1"
)

// Env makes the SDK's default credential chain find the static test
// credentials and nothing else: no shared config or credentials file, no
// profile, no web identity, no instance metadata (which would otherwise be
// probed for seconds off EC2). Code that builds its own clients with
// config.LoadDefaultConfig, such as cloud.NewClients, then runs unchanged.
// It uses t.Setenv, so the test must not be parallel.
func Env(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  Region,
		"AWS_PROFILE":                 "",
		"AWS_DEFAULT_PROFILE":         "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ROLE_ARN":                "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_ENDPOINT_URL":            "",
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
}

// Config returns an aws.Config for clients that talk to url (moto or the
// EC2 fake) with the static test credentials. It makes a single attempt
// per call: the SDK's default retries back off for seconds on the 5xx that
// moto answers for what it does not implement. Tests that exercise
// retries build their clients another way. Region and credentials are
// given, so the SDK never asks instance metadata for them.
func Config(t testing.TB, url string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithRetryMaxAttempts(1),
		config.WithBaseEndpoint(url),
	)
	if err != nil {
		t.Fatalf("aws config for %s: %v", url, err)
	}
	return cfg
}
