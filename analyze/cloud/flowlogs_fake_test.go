package cloud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
	"github.com/abuse-responder/abuse-responder/internal/awstest"
)

var (
	fakeNow    = time.Date(2026, 4, 14, 4, 0, 0, 0, time.UTC)
	fakeTarget = netip.MustParseAddr("203.0.113.10")
)

func fakeEvent(min int, msg string) awstest.LogEvent {
	return awstest.LogEvent{Stream: "eni-web-all", Timestamp: fakeNow.Add(time.Duration(min) * time.Minute), Message: msg}
}

// v2 writes a default-format record from eni-web, a minute long, ending
// min minutes from fakeNow.
func v2(min int, dst string, port int, action string) awstest.LogEvent {
	end := fakeNow.Add(time.Duration(min) * time.Minute)
	return fakeEvent(min, fmt.Sprintf("2 123456789012 eni-web 10.0.1.5 %s 40000 %d 6 2 120 %d %d %s OK",
		dst, port, end.Add(-time.Minute).Unix(), end.Unix(), action))
}

func TestFlowTelemetryFindsSubnetFlowLog(t *testing.T) {
	f := newFake(t)
	f.SetPageSize(2)
	f.AddFlowLog(
		awstest.FlowLog{ID: "fl-vpc", ResourceID: "vpc-a", LogGroup: "vpc-wide"},
		awstest.FlowLog{ID: "fl-s3", ResourceID: "subnet-a", DestinationType: "s3"},
		awstest.FlowLog{ID: "fl-subnet", ResourceID: "subnet-a", LogGroup: "subnet-logs"},
	)
	f.PutLogEvents("subnet-logs",
		v2(-100, "203.0.113.10", 25, "ACCEPT"), v2(-90, "203.0.113.10", 25, "ACCEPT"), v2(-80, "198.51.100.1", 53, "ACCEPT"),
		fakeEvent(-70, fmt.Sprintf("2 123456789012 eni-web - - - - - - - %d %d - SKIPDATA",
			fakeNow.Add(-71*time.Minute).Unix(), fakeNow.Add(-70*time.Minute).Unix())),
		fakeEvent(-60, "garbage"),
	)
	c := fakeClients(t, f, cloud.Options{MaxAttempts: 1})
	tel, err := c.FlowTelemetry(context.Background(), cloud.FlowQuery{ENIs: []string{"eni-web"}, Targets: []netip.Addr{fakeTarget},
		From: fakeNow.Add(-2 * time.Hour), To: fakeNow, Now: fakeNow})
	if err != nil {
		t.Fatalf("FlowTelemetry: %v", err)
	}
	if tel.LogGroup != "subnet-logs" || tel.Records != 4 || len(tel.Flows) != 1 || tel.Flows[0].Accepted != 2 || tel.Flows[0].Bytes != 240 {
		t.Errorf("FlowTelemetry = %+v, want subnet-logs, 4 records, one flow of 2 records and 240 bytes", tel)
	}
	if !strings.Contains(tel.Note, "1 SKIPDATA") || !strings.Contains(tel.Note, "1 records not in the expected format") {
		t.Errorf("Note = %q, want SKIPDATA and malformed counts", tel.Note)
	}
	var reads int
	for _, call := range f.CallLog() {
		if call.Action != "FilterLogEvents" {
			continue
		}
		reads++
		var in struct {
			Prefix string `json:"logStreamNamePrefix"`
			Start  int64  `json:"startTime"`
			End    int64  `json:"endTime"`
		}
		json.Unmarshal(call.Body, &in)
		if in.Prefix != "eni-web-" || in.Start != fakeNow.Add(-135*time.Minute).UnixMilli() || in.End != fakeNow.Add(15*time.Minute).UnixMilli() {
			t.Errorf("FilterLogEvents body = %s, want prefix eni-web- and the window ± 15 min in ms", call.Body)
		}
	}
	if reads != 3 {
		t.Errorf("FilterLogEvents calls = %d, want 3 pages of 2", reads)
	}
}

func TestFlowTelemetryCustomFormat(t *testing.T) {
	f := newFake(t)
	f.AddFlowLog(awstest.FlowLog{ID: "fl-eni", ResourceID: "eni-web", LogGroup: "custom",
		LogFormat: "${interface-id} ${start} ${end} ${dstaddr} ${dstport} ${protocol} ${packets} ${bytes} ${action} ${log-status} ${tcp-flags}"})
	end := fakeNow.Add(-3 * time.Minute)
	f.PutLogEvents("custom", fakeEvent(-3, fmt.Sprintf("eni-web %d %d 203.0.113.10 23 6 4 240 REJECT OK 2", end.Add(-time.Minute).Unix(), end.Unix())))
	tel, err := fakeClients(t, f, cloud.Options{MaxAttempts: 1}).FlowTelemetry(context.Background(), cloud.FlowQuery{
		ENIs: []string{"eni-web"}, Targets: []netip.Addr{fakeTarget}, From: fakeNow.Add(-time.Hour), To: fakeNow, Now: fakeNow})
	if err != nil || len(tel.Flows) != 1 || tel.Flows[0].Port != 23 || tel.Flows[0].Rejected != 1 || !tel.Flows[0].Ongoing {
		t.Errorf("FlowTelemetry(custom format) = %+v, %v; want one ongoing rejected flow to port 23", tel, err)
	}
}

func TestFlowTelemetryWithoutFlowLog(t *testing.T) {
	f := newFake(t)
	q := cloud.FlowQuery{ENIs: []string{"eni-web"}, Targets: []netip.Addr{fakeTarget}, From: fakeNow.Add(-time.Hour), To: fakeNow}
	c := fakeClients(t, f, cloud.Options{MaxAttempts: 1})
	tel, err := c.FlowTelemetry(context.Background(), q)
	if err != nil || tel.Covered || !strings.HasPrefix(tel.Note, "no flow log to CloudWatch Logs covers eni-web") {
		t.Errorf("FlowTelemetry(no flow log) = %+v, %v; want not covered and a note", tel, err)
	}
	q.LogGroup = "gone"
	tel, err = c.FlowTelemetry(context.Background(), q)
	if err != nil || tel.Covered || tel.Note != "log group gone does not exist" {
		t.Errorf("FlowTelemetry(missing group) = %+v, %v; want not covered and a note", tel, err)
	}
	f.FailNext("FilterLogEvents", "AccessDeniedException", 400, 1)
	q.LogGroup = "subnet-logs"
	if _, err = c.FlowTelemetry(context.Background(), q); !cloud.IsAccessDenied(err) {
		t.Errorf("FlowTelemetry(denied) = %v, want access denied", err)
	}
}
