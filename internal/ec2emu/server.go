// Package ec2emu is an in-process emulator of the AWS APIs abuse-responder
// calls: EC2's Query protocol, STS, CloudWatch Logs and SSM, enough for the
// real aws-sdk-go-v2 clients. The tests use it through internal/awstest;
// the demo runs on it so that it needs no AWS account. It does not import
// "testing", so a binary may link it.
package ec2emu

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// EC2Fake is an HTTP server of ours that speaks enough of the EC2 Query
// protocol, STS, CloudWatch Logs and SSM for the real SDK clients to run
// against it. It keeps state (see the Add methods), follows MaxResults and
// NextToken, can fail chosen calls (FailNext), and records every call.
// It is safe for concurrent use; its state lives behind one mutex.
type EC2Fake struct {
	srv *httptest.Server

	mu       sync.Mutex
	calls    []Call
	faults   map[string][]fault // by action, consumed in order
	pageSize int
	st       state
	mut      mutState // the mutating calls' extra state (ec2fake_mutate.go)
	ssm      ssmState // Run Command (ec2fake_ssm.go)
	// EBS volumes and snapshots (snapshot.go).
	snap snapState
}

// Call is one request the fake received.
type Call struct {
	Service     string     // "ec2", "sts", "logs" or "ssm"
	Action      string     // e.g. "DescribeInstances", "FilterLogEvents"
	AccessKeyID string     // from the SigV4 Authorization header
	Params      url.Values // the form, for the Query protocols (EC2, STS)
	Body        []byte     // the JSON body, for Logs and SSM
	Fault       string     // the injected error code, or "" when served
}

// IAMAction is the call's name in IAM policies, e.g. "ec2:DescribeInstances".
func (c Call) IAMAction() string { return c.Service + ":" + c.Action }

type fault struct {
	code   string
	status int
}

// apiError is an error reply: code and message in the protocol's format.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// Start starts the fake on a free port of 127.0.0.1, empty. Close stops it.
func Start() (*EC2Fake, error) {
	// httptest.NewServer would panic when no port is free; a program
	// (the demo) wants an error instead.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ec2emu: listen: %w", err)
	}
	f := &EC2Fake{faults: map[string][]fault{}, pageSize: 1000}
	f.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: f}}
	f.srv.Start()
	return f, nil
}

// Close stops the server and waits for the calls in progress.
func (f *EC2Fake) Close() { f.srv.Close() }

// URL is the endpoint to give every SDK client, STS included.
func (f *EC2Fake) URL() string { return f.srv.URL }

// FailNext makes the next `times` calls of action fail with code and HTTP
// status, e.g. ("DescribeInstances", "RequestLimitExceeded", 503, 2) or
// ("DescribeSecurityGroups", "UnauthorizedOperation", 403, 1). Failed
// calls are recorded too, with Call.Fault set.
func (f *EC2Fake) FailNext(action, code string, httpStatus int, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range times {
		f.faults[action] = append(f.faults[action], fault{code: code, status: httpStatus})
	}
}

// SetPageSize sets how many items a Describe call returns per page when
// the request gives no MaxResults. The default, 1000, means one page.
func (f *EC2Fake) SetPageSize(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pageSize = n
}

// Calls lists the actions received so far, in order, failed ones included.
func (f *EC2Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, len(f.calls))
	for i, c := range f.calls {
		names[i] = c.Action
	}
	return names
}

// CallLog returns the calls received so far with their parameters and
// credentials, in order.
func (f *EC2Fake) CallLog() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// credentialRE finds the access key id and the service in a SigV4
// Authorization header: "Credential=AKID/20260101/us-east-1/ec2/aws4_request".
var credentialRE = regexp.MustCompile(`Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/`)

// ServeHTTP dispatches on X-Amz-Target (the JSON protocols) or else on
// the form's Action (the Query protocols).
func (f *EC2Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c := Call{}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		c.AccessKeyID, c.Service = m[1], m[2]
	}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, action, _ := strings.Cut(target, ".")
		c.Action, c.Body = action, body
		if c.Service == "" {
			c.Service = map[string]string{"Logs_20140328": "logs", "AmazonSSM": "ssm"}[prefix]
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.Action, c.Params = form.Get("Action"), form
		if c.Service == "" {
			c.Service = "ec2"
			if form.Get("Version") == "2011-06-15" {
				c.Service = "sts"
			}
		}
	}

	f.runHook(c.Action) // outside the lock: a hook may change the state
	f.mu.Lock()
	defer f.mu.Unlock()
	var reply any
	if q := f.faults[c.Action]; len(q) > 0 {
		f.faults[c.Action] = q[1:]
		c.Fault = q[0].code
		err = errorf(q[0].status, q[0].code, "injected by the test")
	} else {
		reply, err = f.handle(c)
	}
	f.calls = append(f.calls, c)
	if err != nil {
		writeError(w, c.Service, err)
		return
	}
	switch c.Service {
	case "logs", "ssm":
		writeJSON(w, reply)
	case "sts":
		writeXML(w, c.Action+"Response", "https://sts.amazonaws.com/doc/2011-06-15/", reply)
	default:
		writeXML(w, c.Action+"Response", "http://ec2.amazonaws.com/doc/2016-11-15/", reply)
	}
}

// handle serves one call; f.mu is held.
func (f *EC2Fake) handle(c Call) (any, error) {
	var h func(Call) (any, error)
	switch c.Service {
	case "sts":
		h = map[string]func(Call) (any, error){
			"GetCallerIdentity": f.getCallerIdentity,
			"AssumeRole":        f.assumeRole,
		}[c.Action]
	case "logs":
		h = map[string]func(Call) (any, error){
			"FilterLogEvents": f.filterLogEvents,
		}[c.Action]
	case "ssm":
		h = map[string]func(Call) (any, error){
			"DescribeInstanceInformation": f.describeInstanceInformation,
			"SendCommand":                 f.sendCommand,
			"GetCommandInvocation":        f.getCommandInvocation,
		}[c.Action]
	default:
		h = map[string]func(Call) (any, error){
			"DescribeInstances":         f.describeInstances,
			"DescribeNetworkInterfaces": f.describeNetworkInterfaces,
			"DescribeAddresses":         f.describeAddresses,
			"DescribeNetworkAcls":       f.describeNetworkAcls,
			"DescribeSecurityGroups":    f.describeSecurityGroups,
			"DescribeFlowLogs":          f.describeFlowLogs,
		}[c.Action]
		if h == nil {
			h = f.mutatingHandler(c.Action)
		}
		if h == nil {
			h = f.snapshotHandler(c.Action)
		}
	}
	if h == nil {
		return nil, errorf(400, "InvalidAction", "the fake does not implement %s:%s", c.Service, c.Action)
	}
	return h(c)
}

// writeXML writes body's fields inside <name xmlns=ns>.
func writeXML(w http.ResponseWriter, name, ns string, body any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	start := xml.StartElement{Name: xml.Name{Local: name}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ns}}}
	enc := xml.NewEncoder(w)
	if err := enc.EncodeElement(body, start); err != nil {
		panic(fmt.Sprintf("ec2emu: encode %s: %v", name, err)) // a bug in the fake's types
	}
}

func writeJSON(w http.ResponseWriter, body any) {
	// Encoded whole first, so that the reply has a Content-Length as AWS's
	// replies do, rather than a chunked body.
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("ec2emu: encode JSON reply: %v", err))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// writeError answers in the service's error format: EC2's
// <Response><Errors>, STS's <ErrorResponse>, or the JSON __type.
func writeError(w http.ResponseWriter, service string, err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = errorf(500, "InternalError", "%v", err)
	}
	switch service {
	case "logs", "ssm":
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", e.code)
		w.WriteHeader(e.status)
		json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.msg})
	case "sts":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>`,
			xmlEscape(e.code), xmlEscape(e.msg))
	default:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.status)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>fake</RequestID></Response>`,
			xmlEscape(e.code), xmlEscape(e.msg))
	}
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
