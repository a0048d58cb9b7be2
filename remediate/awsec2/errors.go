package awsec2

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// Error is an EC2 call that failed, classified here, at the boundary, so
// that the engine decides to retry or give up by behaviour (Permanent)
// and never by AWS error codes.
type Error struct {
	Op        string // what we were doing: "create NACL entry 41 in acl-1"
	Code      string // the AWS error code, or "" for our own checks
	Err       error
	permanent bool
}

func (e *Error) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the SDK's error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: a refused permission, a
// missing resource, a full quota, a bad parameter. Throttling has already
// been retried by the SDK's standard retryer when it reaches us, and
// counts as temporary, as do 5xx and network errors.
func (e *Error) Permanent() bool { return e.permanent }

// permanentCodes are the AWS codes after which a retry cannot succeed.
// "*.NotFound" and "*.Malformed" codes are matched by suffix.
var permanentCodes = map[string]bool{
	"UnauthorizedOperation":              true,
	"AuthFailure":                        true,
	"OptInRequired":                      true,
	"NetworkAclEntryLimitExceeded":       true,
	"RulesPerSecurityGroupLimitExceeded": true,
	"SecurityGroupLimitExceeded":         true,
	"InvalidParameterValue":              true,
	"InvalidParameterCombination":        true,
	"InvalidParameter":                   true,
	"MissingParameter":                   true,
	"InvalidPermission.Duplicate":        true,
	"InvalidGroup.Duplicate":             true,
	"DependencyViolation":                true,
}

// wrap classifies err from the call described by op; nil stays nil.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	code := errorCode(err)
	return &Error{
		Op:        fmt.Sprintf(format, args...),
		Code:      code,
		Err:       err,
		permanent: permanentCodes[code] || strings.HasSuffix(code, ".NotFound") || strings.HasSuffix(code, ".Malformed"),
	}
}

// permanentf is a permanent error of our own making, such as no free
// rule number left.
func permanentf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &Error{Op: "awsec2", Err: errors.New(msg), permanent: true}
}

// IsPermanent reports whether err, or an error it wraps, says retrying
// cannot help (see Error.Permanent). Any error with a Permanent() bool
// method counts, so the engine may declare a matching interface of its own.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// errorCode is the AWS error code in err's chain, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isCode reports whether err carries the AWS error code.
func isCode(err error, code string) bool { return errorCode(err) == code }

// isNotFound reports whether err says the resource does not exist.
func isNotFound(err error) bool { return strings.HasSuffix(errorCode(err), ".NotFound") }

// isDryRunOK reports whether err is EC2's answer to a DryRun call that
// would have succeeded (HTTP 412 DryRunOperation).
func isDryRunOK(err error) bool { return isCode(err, "DryRunOperation") }
