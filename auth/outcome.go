package auth

import (
	"errors"

	"github.com/profilecache/profilecache/profile"
)

// Outcomes of a credential check, as Config.OnValidate reports them. A
// small fixed set, fit for a metric label.
const (
	OutcomeOK      = "ok"      // a live session
	OutcomeMissing = "missing" // no credential at all (anonymous)
	OutcomeExpired = "expired" // the JWT expired, or the session reached its maximum age
	OutcomeRevoked = "revoked" // the JWT is good but its session is gone: logout, revoke, or idle expiry (TTL)
	OutcomeForged  = "forged"  // a bad signature, a wrong algorithm or an unknown signing key
	OutcomeInvalid = "invalid" // malformed: bad header, bad JWT, bad claims
	OutcomeError   = "error"   // the session store did not answer (503, not a rejection)
)

// outcomes maps each rejection to its outcome. A rejection missing here
// counts as invalid.
var outcomes = map[error]string{
	rejNoCredential.err:    OutcomeMissing,
	rejExpired.err:         OutcomeExpired,
	rejIdle.err:            OutcomeExpired,
	rejAbsoluteTimeout.err: OutcomeExpired,
	rejRevoked.err:         OutcomeRevoked,
	rejSignature.err:       OutcomeForged,
	rejUnknownKey.err:      OutcomeForged,
}

// outcomeOf is the outcome of a check that returned err.
func outcomeOf(err error) string {
	if err == nil {
		return OutcomeOK
	}
	if o, ok := outcomes[err]; ok {
		return o
	}
	if errors.Is(err, ErrUnauthenticated) {
		return OutcomeInvalid
	}
	if errors.Is(err, profile.ErrUnavailable) {
		return OutcomeError
	}
	return OutcomeInvalid
}
