package cloud_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

// One moto_server serves every test of the package; each test resets it.
func TestMain(m *testing.M) {
	code := m.Run()
	awstest.StopSharedMoto()
	os.Exit(code)
}

// motoWorld is awstest's moto world (its instances tagged team=web)
// with the package's clients and a CloudWatch Logs client.
type motoWorld struct {
	*awstest.MotoWorld
	clients *cloud.Clients
	logs    *cloudwatchlogs.Client
}

func newMotoWorld(t *testing.T) *motoWorld {
	t.Helper()
	w := &motoWorld{MotoWorld: awstest.NewMotoWorld(t, awstest.MotoWorldOptions{Tags: map[string]string{"team": "web"}})}
	w.logs = cloudwatchlogs.NewFromConfig(awstest.Config(t, w.Moto.URL()))
	var err error
	// MaxAttempts 1: moto answers 500 for calls it lacks (SSM
	// DescribeInstanceInformation), and retrying those only slows the test.
	w.clients, err = cloud.NewClients(context.Background(), cloud.Options{Region: awstest.Region, EndpointURL: w.Moto.URL(), MaxAttempts: 1})
	if err != nil {
		t.Fatalf("NewClients: %v", err)
	}
	return w
}

// fatalIf fails the test when a set-up call failed.
func fatalIf(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("set-up %s: %v", call, err)
	}
}
