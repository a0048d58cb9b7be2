package ec2emu

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// AssumedAccessKeyID is the access key id of the credentials the fake's
// AssumeRole hands out, followed by a serial number ("…1", "…2").
const AssumedAccessKeyID = "ASIAAWSTESTASSUMED"

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

func (f *EC2Fake) getCallerIdentity(c Call) (any, error) {
	type result struct {
		Account string `xml:"Account"`
		Arn     string `xml:"Arn"`
		UserID  string `xml:"UserId"`
	}
	return struct {
		Result result `xml:"GetCallerIdentityResult"`
	}{result{Account: AccountID, Arn: "arn:aws:iam::" + AccountID + ":user/awstest", UserID: c.AccessKeyID}}, nil
}

// assumeRole hands out fresh credentials; the test reads RoleArn and
// ExternalId from the CallLog.
func (f *EC2Fake) assumeRole(c Call) (any, error) {
	arn, session := c.Params.Get("RoleArn"), c.Params.Get("RoleSessionName")
	if arn == "" || session == "" {
		return nil, errorf(400, "ValidationError", "RoleArn and RoleSessionName are required")
	}
	f.st.assumed++
	n := strconv.Itoa(f.st.assumed)
	role := arn[strings.LastIndex(arn, "/")+1:]
	type user struct {
		Arn string `xml:"Arn"`
		ID  string `xml:"AssumedRoleId"`
	}
	type result struct {
		Credentials stsCredentials `xml:"Credentials"`
		User        user           `xml:"AssumedRoleUser"`
	}
	return struct {
		Result result `xml:"AssumeRoleResult"`
	}{result{
		Credentials: stsCredentials{
			AccessKeyID: AssumedAccessKeyID + n, SecretAccessKey: "assumed-secret-" + n, SessionToken: "assumed-token-" + n,
			Expiration: time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
		},
		User: user{Arn: "arn:aws:sts::" + AccountID + ":assumed-role/" + role + "/" + session, ID: "AROAFAKE:" + session},
	}}, nil
}

type jsonLogEvent struct {
	Stream        string `json:"logStreamName"`
	Timestamp     int64  `json:"timestamp"`
	Message       string `json:"message"`
	IngestionTime int64  `json:"ingestionTime"`
	EventID       string `json:"eventId"`
}

// filterLogEvents serves events of one group in timestamp order, from
// the named streams or those with the prefix, within [startTime, endTime]
// in milliseconds. The fake ignores filterPattern.
func (f *EC2Fake) filterLogEvents(c Call) (any, error) {
	var in struct {
		Group     string   `json:"logGroupName"`
		Streams   []string `json:"logStreamNames"`
		Prefix    string   `json:"logStreamNamePrefix"`
		StartTime *int64   `json:"startTime"`
		EndTime   *int64   `json:"endTime"`
		NextToken string   `json:"nextToken"`
		Limit     int      `json:"limit"`
	}
	if err := json.Unmarshal(c.Body, &in); err != nil {
		return nil, errorf(400, "SerializationException", "%v", err)
	}
	all, ok := f.st.logs[in.Group]
	if !ok {
		return nil, errorf(400, "ResourceNotFoundException", "The specified log group does not exist.")
	}
	if len(in.Streams) > 0 && in.Prefix != "" {
		return nil, errorf(400, "InvalidParameterException", "logStreamNames and logStreamNamePrefix are exclusive")
	}
	var events []jsonLogEvent
	for i, e := range all {
		ms := e.Timestamp.UnixMilli()
		switch {
		case len(in.Streams) > 0 && !slices.Contains(in.Streams, e.Stream),
			!strings.HasPrefix(e.Stream, in.Prefix),
			in.StartTime != nil && ms < *in.StartTime,
			in.EndTime != nil && ms > *in.EndTime:
			continue
		}
		events = append(events, jsonLogEvent{Stream: e.Stream, Timestamp: ms, Message: e.Message, IngestionTime: ms, EventID: strconv.Itoa(i)})
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Timestamp < events[j].Timestamp })
	max := ""
	if in.Limit > 0 {
		max = strconv.Itoa(in.Limit)
	}
	start, end, next, err := f.page(len(events), max, in.NextToken)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"events": events[start:end], "searchedLogStreams": []any{}}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

// describeInstanceInformation lists the instances marked with
// SetSSMManaged, narrowed by an InstanceIds filter.
func (f *EC2Fake) describeInstanceInformation(c Call) (any, error) {
	var in struct {
		Filters []struct {
			Key    string
			Values []string
		}
		InstanceInformationFilterList []struct {
			Key      string   `json:"key"`
			ValueSet []string `json:"valueSet"`
		}
		MaxResults int
		NextToken  string
	}
	if err := json.Unmarshal(c.Body, &in); err != nil {
		return nil, errorf(400, "SerializationException", "%v", err)
	}
	var want []string
	for _, fl := range in.Filters {
		if fl.Key == "InstanceIds" {
			want = append(want, fl.Values...)
		}
	}
	for _, fl := range in.InstanceInformationFilterList {
		if fl.Key == "InstanceIds" {
			want = append(want, fl.ValueSet...)
		}
	}
	ids := sortedKeys(f.st.ssmManaged)
	max := ""
	if in.MaxResults > 0 {
		max = strconv.Itoa(in.MaxResults)
	}
	start, end, next, err := f.page(len(ids), max, in.NextToken)
	if err != nil {
		return nil, err
	}
	list := []map[string]string{}
	for _, id := range ids[start:end] {
		if len(want) == 0 || slices.Contains(want, id) {
			list = append(list, map[string]string{"InstanceId": id, "PingStatus": "Online", "ResourceType": "EC2Instance"})
		}
	}
	out := map[string]any{"InstanceInformationList": list}
	if next != "" {
		out["NextToken"] = next
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
