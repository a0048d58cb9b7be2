package cloud

import (
	"errors"
	"fmt"
	"testing"

	"github.com/aws/smithy-go"
)

func TestErrorClasses(t *testing.T) {
	wrap := func(code string) error {
		return fmt.Errorf("describe things: %w", errors.Join(errors.New("other"), &smithy.GenericAPIError{Code: code}))
	}
	for _, tc := range []struct {
		err              error
		denied, notFound bool
	}{
		{wrap("UnauthorizedOperation"), true, false},
		{wrap("AccessDenied"), true, false},
		{wrap("AccessDeniedException"), true, false},
		{wrap("InvalidInstanceID.NotFound"), false, true},
		{wrap("InvalidGroup.NotFound"), false, true},
		{wrap("ResourceNotFoundException"), false, true},
		{wrap("RequestLimitExceeded"), false, false},
		{errors.New("plain"), false, false},
		{nil, false, false},
	} {
		if got := IsAccessDenied(tc.err); got != tc.denied {
			t.Errorf("IsAccessDenied(%v) = %v, want %v", tc.err, got, tc.denied)
		}
		if got := IsNotFound(tc.err); got != tc.notFound {
			t.Errorf("IsNotFound(%v) = %v, want %v", tc.err, got, tc.notFound)
		}
	}
}
