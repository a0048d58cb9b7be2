package cloud

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// OngoingWithin is how recent a record's end must be, before
// FlowQuery.Now, for its flow to count as ongoing. Flow logs aggregate
// over up to 10 minutes and arrive minutes later, so a flow still running
// has its last record about this old.
const OngoingWithin = 10 * time.Minute

// eventSlack widens the FilterLogEvents time range beyond [From, To]: an
// event's timestamp is set at delivery, not at the record's start, so a
// record overlapping the window may carry a timestamp just outside it.
const eventSlack = 15 * time.Minute

// FlowQuery asks what VPC flow logs saw our interfaces send to targets.
type FlowQuery struct {
	// LogGroup is the CloudWatch Logs group of the flow log, whose
	// records are then read in the default format; "" finds the group
	// (and its format) with DescribeFlowLogs for the ENIs, their subnets
	// or VPCs.
	LogGroup string
	ENIs     []string
	Targets  []netip.Addr
	From, To time.Time // the abuse window, margin included
	Now      time.Time // for Ongoing
}

// Telemetry is what the flow logs showed.
type Telemetry struct {
	LogGroup string `json:"log_group"`
	// Covered says flow log records exist for these ENIs in [From, To],
	// NODATA ones included, so that "no traffic" means something.
	Covered bool        `json:"covered"`
	Records int         `json:"records"` // records of our ENIs read in the window
	Flows   []FlowStats `json:"flows"`   // one per (target, dst port, protocol), sorted
	Note    string      `json:"note,omitempty"`
}

// FlowTelemetry reads the flow log records of q.ENIs in the window and
// sums those going to q.Targets. It reads the streams "<eni>-all" page by
// page and keeps only the sums. No flow log for the interfaces is a
// finding (Covered false, Note set), not an error.
func (c *Clients) FlowTelemetry(ctx context.Context, q FlowQuery) (Telemetry, error) {
	t := Telemetry{LogGroup: q.LogGroup}
	if len(q.ENIs) == 0 {
		t.Note = "no network interfaces to read flow logs for"
		return t, nil
	}
	if q.From.IsZero() || q.To.Before(q.From) {
		return t, fmt.Errorf("flow telemetry: bad window %v to %v", q.From, q.To)
	}
	lay := defaultLayout
	if t.LogGroup == "" {
		group, format, err := c.findFlowLog(ctx, q.ENIs)
		if err != nil {
			return t, err
		}
		if group == "" {
			t.Note = "no flow log to CloudWatch Logs covers " + strings.Join(q.ENIs, ", ") + ", their subnets or VPCs"
			return t, nil
		}
		t.LogGroup = group
		if format != "" {
			if lay, err = parseLayout(format); err != nil {
				t.Note = err.Error()
				return t, nil
			}
		}
	}

	targets := map[netip.Addr]bool{}
	for _, a := range q.Targets {
		targets[a.Unmap()] = true
	}
	sums := map[flowKey]*FlowStats{}
	var skipped, malformed int
	for _, eni := range q.ENIs {
		p := cloudwatchlogs.NewFilterLogEventsPaginator(c.Logs, &cloudwatchlogs.FilterLogEventsInput{
			LogGroupName:        aws.String(t.LogGroup),
			LogStreamNamePrefix: aws.String(eni + "-"), // "<eni>-all"; a prefix, unlike names, is no error when absent
			StartTime:           aws.Int64(q.From.Add(-eventSlack).UnixMilli()),
			EndTime:             aws.Int64(q.To.Add(eventSlack).UnixMilli()),
		})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if IsNotFound(err) {
				t.Note = "log group " + t.LogGroup + " does not exist"
				return t, nil
			}
			if err != nil {
				return t, fmt.Errorf("read flow log %s for %s: %w", t.LogGroup, eni, err)
			}
			for _, ev := range out.Events {
				r, err := lay.parseRecord(aws.ToString(ev.Message))
				if err != nil {
					malformed++
					continue
				}
				// Streams are per interface, but moto ignores the prefix,
				// and the records say which interface they are for.
				if r.iface != eni || r.end.Before(q.From) || r.start.After(q.To) {
					continue
				}
				t.Records++
				switch {
				case r.status == "SKIPDATA":
					skipped++
				case r.status != "OK" || !targets[r.dst]:
				default:
					k := flowKey{r.dst, r.dstPort, r.protocol}
					if sums[k] == nil {
						sums[k] = &FlowStats{Target: r.dst.String(), Port: r.dstPort, Protocol: r.protocol}
					}
					sums[k].add(r)
				}
			}
		}
	}

	t.Covered = t.Records > 0
	for _, s := range sums {
		s.Ongoing = !q.Now.IsZero() && q.Now.Sub(*s.Last) <= OngoingWithin
		t.Flows = append(t.Flows, *s)
	}
	sort.Slice(t.Flows, func(i, j int) bool {
		a, b := t.Flows[i], t.Flows[j]
		if a.Target != b.Target {
			return a.Target < b.Target
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
	var notes []string
	if skipped > 0 {
		notes = append(notes, fmt.Sprintf("%d SKIPDATA records: some flows were not logged, counts are a lower bound", skipped))
	}
	if malformed > 0 {
		notes = append(notes, fmt.Sprintf("%d records not in the expected format were ignored", malformed))
	}
	t.Note = strings.Join(notes, "; ")
	return t, nil
}

// findFlowLog returns the log group and format of the most specific
// active flow log delivering to CloudWatch Logs for the interfaces: one on
// an interface, else on its subnet, else on its VPC. It returns "" when
// there is none.
func (c *Clients) findFlowLog(ctx context.Context, enis []string) (group, format string, err error) {
	// Learn the subnets and VPCs; failing that, the interfaces alone.
	resources := slices.Clone(enis)
	rank := map[string]int{}
	if ifs, err := c.interfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: enis}, 0); err == nil {
		for _, n := range ifs {
			subnet, vpc := aws.ToString(n.SubnetId), aws.ToString(n.VpcId)
			resources = appendNew(resources, subnet, vpc)
			rank[subnet], rank[vpc] = 1, 2
		}
	} else if ctx.Err() != nil {
		return "", "", ctx.Err()
	}

	var best *types.FlowLog
	p := ec2.NewDescribeFlowLogsPaginator(c.EC2, &ec2.DescribeFlowLogsInput{
		Filter: append(filter("resource-id", resources...), filter("log-destination-type", "cloud-watch-logs")...),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return "", "", fmt.Errorf("find the flow log of %s: %w", strings.Join(enis, ", "), err)
		}
		for i, fl := range out.FlowLogs {
			if aws.ToString(fl.LogGroupName) == "" || !strings.EqualFold(aws.ToString(fl.FlowLogStatus), "ACTIVE") {
				continue
			}
			if best == nil || rank[aws.ToString(fl.ResourceId)] < rank[aws.ToString(best.ResourceId)] {
				best = &out.FlowLogs[i]
			}
		}
	}
	if best == nil {
		return "", "", nil
	}
	return aws.ToString(best.LogGroupName), aws.ToString(best.LogFormat), nil
}
