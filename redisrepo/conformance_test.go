package redisrepo_test

import (
	"github.com/profilecache/profilecache/auth"
	"github.com/profilecache/profilecache/redisrepo"
)

// TokenStore implements auth.TokenStore. The assertion lives in a test so
// that redisrepo itself does not import auth (and echo, jwt with it): auth's
// own tests may then use the real store without an import cycle.
var _ auth.TokenStore = (*redisrepo.TokenStore)(nil)
