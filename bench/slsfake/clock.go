package slsfake

import (
	"errors"
	"fmt"
	"time"
)

// The stand-in's own clock is what SLS compares times against: the request
// time (RequestTimeExpired, 15 minutes either way, error codes page
// https://www.alibabacloud.com/help/en/sls/developer-reference/error-codes)
// and the log times of PutLogs ([-7 days, +15 min], validate.go). Tests skew
// it to play a server whose clock differs from the client's.

// now is the server's time: the base clock plus the skew.
func (s *Server) now() time.Time {
	return s.clock().Add(time.Duration(s.skew.Load()))
}

// Now reports the server's clock (the machine's clock plus the skew).
func (s *Server) Now() time.Time { return s.now() }

// SetClockSkew sets the server clock to the machine's clock plus d (negative
// d puts it behind). Past 15 minutes either way every signed request is
// refused with 400 RequestTimeExpired, as SLS refuses a client whose clock
// is that far off.
func (s *Server) SetClockSkew(d time.Duration) { s.skew.Store(int64(d)) }

// ClockSkew reports the skew set by SetClockSkew.
func (s *Server) ClockSkew() time.Duration { return time.Duration(s.skew.Load()) }

type clockState struct {
	Now  time.Time `json:"now"`
	Skew string    `json:"skew"`
}

func (s *Server) clockState() clockState {
	return clockState{Now: s.now(), Skew: s.ClockSkew().String()}
}

// setClock is the control API's form: a skew, or the time the server clock
// should show now.
func (s *Server) setClock(skew string, now time.Time) error {
	switch {
	case skew != "" && !now.IsZero():
		return errors.New("cannot set the clock: give skew or now, not both")
	case skew != "":
		d, err := time.ParseDuration(skew)
		if err != nil {
			return fmt.Errorf("cannot read skew: %w", err)
		}
		s.SetClockSkew(d)
	case !now.IsZero():
		s.SetClockSkew(now.Sub(s.clock()))
	default:
		return errors.New("cannot set the clock: give skew or now")
	}
	return nil
}
