package remediate

import "errors"

// PermanentError is implemented by errors that retrying will not cure: the
// role may not call the API (UnauthorizedOperation), the ACL or instance is
// gone (NotFound), the plan names a kind no backend handles. The daemon
// moves such a case to needs-human; every other error is temporary and the
// case is retried later with backoff.
//
// Backends classify at the boundary where the error arises (the AWS error
// codes are mapped in remediate/awsec2 alone): they wrap with MarkPermanent,
// or return their own type with a Permanent method; callers ask IsPermanent.
type PermanentError interface {
	error
	Permanent() bool
}

// Permanent wraps an error that retrying will not cure. errors.Is and
// errors.As see through it to Err.
type Permanent struct {
	Err error
}

// Error returns the wrapped error's text unchanged: being permanent is a
// property of the error, not part of its message.
func (p *Permanent) Error() string { return p.Err.Error() }

// Unwrap returns the wrapped error.
func (p *Permanent) Unwrap() error { return p.Err }

// Permanent reports true: see PermanentError.
func (p *Permanent) Permanent() bool { return true }

// MarkPermanent wraps err as permanent; nil stays nil.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &Permanent{Err: err}
}

// IsPermanent reports whether err, or any error it wraps or joins, says it
// is permanent.
func IsPermanent(err error) bool {
	var pe PermanentError
	return errors.As(err, &pe) && pe.Permanent()
}
