package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/profilecache/profilecache/profile"
)

// Per-section freshness (issue 12): PROFILE_FRESH and PROFILE_STALE_MAX.

// defaultFresh is PROFILE_FRESH's default: basic=1h, interests=1h,
// orders=5m, invoices=30m, inquiries=5m.
var defaultFresh = [profile.NumSections]time.Duration{
	profile.SectionBasic:     time.Hour,
	profile.SectionInterests: time.Hour,
	profile.SectionOrders:    5 * time.Minute,
	profile.SectionInvoices:  30 * time.Minute,
	profile.SectionInquiries: 5 * time.Minute,
}

// freshConfig is what PROFILE_FRESH and PROFILE_STALE_MAX say.
type freshConfig struct {
	freshWindows [profile.NumSections]time.Duration
	freshOff     bool
	staleMax     time.Duration // 0: PROFILE_TTL
}

// vars are freshConfig's entries in the registry (config_vars.go).
func (f *freshConfig) vars() []envVar {
	return []envVar{
		{Name: "PROFILE_FRESH", Group: groupProfile, Default: "basic=1h,interests=1h,orders=5m,invoices=30m,inquiries=5m",
			parse: func(v string) (err error) {
				f.freshWindows, f.freshOff, err = parseFresh(v)
				return err
			},
			Doc: "per-section freshness window: an older section is still served at once and reloaded in the background, alone, once across instances; sections not named keep their default, `orders=off` leaves one alone, `off` turns it all off (reloads only at login, refresh, webhook or a miss)"},
		{Name: "PROFILE_STALE_MAX", Group: groupProfile, Unset: "`PROFILE_TTL`", parse: setPositive(&f.staleMax, "12h"),
			Doc: "a section older than this is reloaded before the read answers (a 503 if the CRM fails then), as a missing one is"},
	}
}

// freshness is the profile.Freshness the Service gets: off, or the
// windows with PROFILE_STALE_MAX (default profileTTL).
func (f freshConfig) freshness(profileTTL time.Duration) profile.Freshness {
	if f.freshOff {
		return profile.Freshness{}
	}
	fr := profile.Freshness{Window: f.freshWindows, StaleMax: f.staleMax}
	if fr.StaleMax <= 0 {
		fr.StaleMax = profileTTL
	}
	return fr
}

// parseFresh parses PROFILE_FRESH: "off", or comma-separated
// section=duration pairs ("orders=5m,invoices=30m"); a section not named
// keeps its default, "section=off" leaves it alone.
func parseFresh(v string) (w [profile.NumSections]time.Duration, off bool, err error) {
	w = defaultFresh
	if strings.EqualFold(strings.TrimSpace(v), "off") {
		return [profile.NumSections]time.Duration{}, true, nil
	}
	var seen [profile.NumSections]bool
	for item := range strings.SplitSeq(v, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		if !ok || name == "" || val == "" {
			return w, false, fmt.Errorf("invalid item %q (want section=duration, e.g. orders=5m, or off)", item)
		}
		sec, known := profile.ParseSection(name)
		if !known {
			return w, false, fmt.Errorf("unknown section %q (want %s)", name, sectionList())
		}
		if seen[sec] {
			return w, false, fmt.Errorf("section %s named twice", name)
		}
		seen[sec] = true
		if strings.EqualFold(val, "off") {
			w[sec] = 0
			continue
		}
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return w, false, fmt.Errorf("%s: invalid duration %q (a positive duration such as 5m, or off)", name, val)
		}
		w[sec] = d
	}
	return w, false, nil
}

func sectionList() string {
	names := make([]string, profile.NumSections)
	for s := range profile.NumSections {
		names[s] = s.String()
	}
	return strings.Join(names, ", ")
}

// freshString is PROFILE_FRESH as it is in effect, for the config log line.
func (f freshConfig) freshString() string {
	if f.freshOff {
		return "off"
	}
	parts := make([]string, 0, profile.NumSections)
	for s, w := range f.freshWindows {
		v := "off"
		if w > 0 {
			v = w.String()
		}
		parts = append(parts, profile.Section(s).String()+"="+v)
	}
	return strings.Join(parts, ",")
}
