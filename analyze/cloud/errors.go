package cloud

import (
	"errors"
	"strings"

	"github.com/aws/smithy-go"
)

// accessDeniedCodes are the codes AWS services use for a call that IAM
// (or an SCP) refused: EC2 says UnauthorizedOperation, STS and the Query
// APIs AccessDenied, the JSON APIs (Logs, SSM) AccessDeniedException.
var accessDeniedCodes = map[string]bool{
	"UnauthorizedOperation": true,
	"AccessDenied":          true,
	"AccessDeniedException": true,
}

// IsAccessDenied reports whether err, or an error it wraps, is AWS
// refusing the call for lack of permission.
func IsAccessDenied(err error) bool {
	code := errorCode(err)
	return accessDeniedCodes[code]
}

// IsNotFound reports whether err, or an error it wraps, says the named
// resource does not exist: EC2's "*.NotFound" codes (an instance, ENI,
// group, address or ACL id), or the JSON APIs' ResourceNotFoundException
// (a log group).
func IsNotFound(err error) bool {
	code := errorCode(err)
	return strings.HasSuffix(code, ".NotFound") || code == "ResourceNotFoundException"
}

// errorCode is the AWS error code in err's chain, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
