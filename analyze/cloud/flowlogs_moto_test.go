package cloud_test

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/abuse-responder/abuse-responder/analyze/cloud"
)

// flowLine writes a default-format (v2) record; the event's timestamp
// is the record's end, as CloudWatch sets it at delivery.
func flowLine(eni, dst string, port, proto int, packets, bytes int, start, end time.Time, action string) cwtypes.InputLogEvent {
	msg := fmt.Sprintf("2 123456789012 %s 10.0.1.4 %s 49152 %d %d %d %d %d %d %s OK",
		eni, dst, port, proto, packets, bytes, start.Unix(), end.Unix(), action)
	return cwtypes.InputLogEvent{Message: &msg, Timestamp: aws.Int64(end.UnixMilli())}
}

func noData(eni string, start, end time.Time) cwtypes.InputLogEvent {
	msg := fmt.Sprintf("2 123456789012 %s - - - - - - - %d %d - NODATA", eni, start.Unix(), end.Unix())
	return cwtypes.InputLogEvent{Message: &msg, Timestamp: aws.Int64(end.UnixMilli())}
}

func putEvents(t *testing.T, logs *cloudwatchlogs.Client, group, stream string, events ...cwtypes.InputLogEvent) {
	t.Helper()
	ctx := context.Background()
	_, err := logs.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: &group, LogStreamName: &stream})
	fatalIf(t, "CreateLogStream", err)
	// CloudWatch wants a batch in time order.
	sort.Slice(events, func(i, j int) bool { return *events[i].Timestamp < *events[j].Timestamp })
	_, err = logs.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: &group, LogStreamName: &stream, LogEvents: events})
	fatalIf(t, "PutLogEvents", err)
}

func TestFlowTelemetryOnMoto(t *testing.T) {
	w := newMotoWorld(t)
	ctx := context.Background()
	const group = "vpc-flow-logs"
	_, err := w.logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)})
	fatalIf(t, "CreateLogGroup", err)
	_, err = w.EC2.CreateFlowLogs(ctx, &ec2.CreateFlowLogsInput{
		ResourceIds: []string{w.ENI}, ResourceType: types.FlowLogsResourceTypeNetworkInterface, TrafficType: types.TrafficTypeAll,
		LogGroupName: aws.String(group), DeliverLogsPermissionArn: aws.String("arn:aws:iam::123456789012:role/flow-logs"),
	})
	fatalIf(t, "CreateFlowLogs", err)

	now := time.Now().UTC().Truncate(time.Minute)
	from, to := now.Add(-2*time.Hour), now
	at := func(d time.Duration) time.Time { return now.Add(d) }
	const target = "203.0.113.10"
	putEvents(t, w.logs, group, w.ENI+"-all",
		flowLine(w.ENI, target, 22, 6, 10, 600, at(-90*time.Minute), at(-89*time.Minute), "ACCEPT"),
		flowLine(w.ENI, target, 22, 6, 3, 180, at(-30*time.Minute), at(-29*time.Minute), "REJECT"),
		flowLine(w.ENI, target, 22, 6, 5, 300, at(-6*time.Minute), at(-5*time.Minute), "ACCEPT"),
		flowLine(w.ENI, target, 23, 6, 1, 60, at(-60*time.Minute), at(-59*time.Minute), "REJECT"),
		flowLine(w.ENI, "192.0.2.44", 443, 6, 7, 900, at(-50*time.Minute), at(-49*time.Minute), "ACCEPT"),
		noData(w.ENI, at(-20*time.Minute), at(-19*time.Minute)),
		// Ended before the window, though its timestamp is within the
		// slack FlowTelemetry reads: not counted.
		flowLine(w.ENI, target, 22, 6, 99, 9900, from.Add(-10*time.Minute), from.Add(-1*time.Minute), "ACCEPT"),
		flowLine(w.ENI, target, 22, 6, 99, 9900, at(-5*time.Hour), at(-299*time.Minute), "ACCEPT"),
	)
	// Another interface's stream: moto ignores the stream prefix, so this
	// checks that the records' interface-id is honoured.
	putEvents(t, w.logs, group, "eni-0ther-all", flowLine("eni-0ther", target, 22, 6, 50, 5000, at(-40*time.Minute), at(-39*time.Minute), "ACCEPT"))

	tel, err := w.clients.FlowTelemetry(ctx, cloud.FlowQuery{
		ENIs: []string{w.ENI}, Targets: []netip.Addr{netip.MustParseAddr(target)}, From: from, To: to, Now: now,
	})
	if err != nil {
		t.Fatalf("FlowTelemetry: %v", err)
	}
	if tel.LogGroup != group || !tel.Covered || tel.Records != 6 || len(tel.Flows) != 2 {
		t.Fatalf("FlowTelemetry = group %q covered %v records %d flows %+v; want %s, covered, 6 records, 2 flows",
			tel.LogGroup, tel.Covered, tel.Records, tel.Flows, group)
	}
	ssh, telnet := tel.Flows[0], tel.Flows[1]
	first, last := at(-90*time.Minute), at(-5*time.Minute)
	if ssh.Target != target || ssh.Port != 22 || ssh.Protocol != "tcp" || ssh.Accepted != 2 || ssh.Rejected != 1 ||
		ssh.Packets != 18 || ssh.Bytes != 1080 || !ssh.First.Equal(first) || !ssh.Last.Equal(last) || !ssh.Ongoing {
		t.Errorf("port 22 flow = %+v (first %v last %v), want 2 accepted, 1 rejected, 18 packets, 1080 bytes, %v to %v, ongoing",
			ssh, ssh.First, ssh.Last, first, last)
	}
	if telnet.Port != 23 || telnet.Accepted != 0 || telnet.Rejected != 1 || telnet.Bytes != 60 || telnet.Ongoing {
		t.Errorf("port 23 flow = %+v, want 1 rejected, 60 bytes, not ongoing", telnet)
	}

	// Records in the window, none to this target: covered, no flows.
	tel, err = w.clients.FlowTelemetry(ctx, cloud.FlowQuery{LogGroup: group, ENIs: []string{w.ENI},
		Targets: []netip.Addr{netip.MustParseAddr("198.51.100.200")}, From: from, To: to, Now: now})
	if err != nil || !tel.Covered || tel.Records != 6 || len(tel.Flows) != 0 {
		t.Errorf("FlowTelemetry(other target) = covered %v records %d flows %v, %v; want covered, 6, none", tel.Covered, tel.Records, tel.Flows, err)
	}

	// No records at all in the window: not covered.
	tel, err = w.clients.FlowTelemetry(ctx, cloud.FlowQuery{LogGroup: group, ENIs: []string{w.ENI},
		Targets: []netip.Addr{netip.MustParseAddr(target)}, From: now.Add(-30 * time.Hour), To: now.Add(-28 * time.Hour), Now: now})
	if err != nil || tel.Covered || tel.Records != 0 || len(tel.Flows) != 0 {
		t.Errorf("FlowTelemetry(empty window) = covered %v records %d flows %v, %v; want not covered", tel.Covered, tel.Records, tel.Flows, err)
	}
}
