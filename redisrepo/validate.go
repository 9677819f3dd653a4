package redisrepo

import (
	"fmt"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// checkTimes refuses dates that RFC 3339 cannot hold (years outside
// 0000..9999): they would be written fine and then never decode, so every
// read would miss and reload. Better one clear error at save.
func checkTimes(p *profile.Profile) error {
	if err := checkTime("basic created", p.Basic.Created); err != nil {
		return err
	}
	for i, o := range p.Orders {
		if err := checkTime(fmt.Sprintf("order %d date", i), o.Date); err != nil {
			return err
		}
	}
	for i, v := range p.Invoices {
		if err := checkTime(fmt.Sprintf("invoice %d date", i), v.Date); err != nil {
			return err
		}
	}
	for i, q := range p.Inquiries {
		if err := checkTime(fmt.Sprintf("inquiry %d submitted", i), q.Submitted); err != nil {
			return err
		}
	}
	return nil
}

func checkTime(what string, t time.Time) error {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Errorf("%s %s: year outside 0..9999", what, t.UTC().Format(time.RFC3339))
	}
	return nil
}
