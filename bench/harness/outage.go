package harness

import (
	"fmt"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/bench/targets"
)

// outageWatch measures, in a scenario with an SLS outage, what the issue's
// drain test asks for: after the stand-in answers again, how soon the
// newest log in it is fresh (at most 3 s old) and how old it is 10 s
// after, and when the relay's backlog is drained. Used by one goroutine.
type outageWatch struct {
	end                        time.Time // when the stand-in answers again
	freshAfter, ageAfter10s    time.Duration
	drainedAfter               time.Duration
	measuredAge, measuredDrain bool
}

// sample looks at the stand-in and the relay's backlog (bytes) at now.
func (w *outageWatch) sample(now time.Time, fake *slsfake.Remote, backlog func() int64) {
	el := now.Sub(w.end)
	if el < 0 {
		return
	}
	if !w.measuredAge || w.freshAfter == 0 {
		// Unreadable this second: the next sample measures.
		if newest, err := fake.NewestLogTime(targets.Project, targets.Topic, 1000); err == nil {
			age := now.Sub(newest)
			if w.freshAfter == 0 && age <= 3*time.Second {
				w.freshAfter = el
			}
			if !w.measuredAge && el >= 10*time.Second {
				w.ageAfter10s, w.measuredAge = age, true
			}
		}
	}
	if !w.measuredDrain && backlog != nil && backlog() == 0 {
		w.drainedAfter, w.measuredDrain = el, true
	}
}

// notes says what sample measured, for the run's notes.
func (w *outageWatch) notes() []string {
	fresh, age, drained := "not within the run", "not measured (the run ended first)", "not within the run"
	if w.freshAfter > 0 {
		fresh = fmt.Sprintf("after %v", w.freshAfter.Round(100*time.Millisecond))
	}
	if w.measuredAge {
		age = fmt.Sprintf("%v", w.ageAfter10s.Round(100*time.Millisecond))
	}
	if w.measuredDrain {
		drained = fmt.Sprintf("after %v", w.drainedAfter.Round(time.Second))
	}
	return []string{
		fmt.Sprintf("after the outage: newest log in SLS at most 3 s old %s; its age 10 s after SLS answered again: %s (goal <= 10 s)", fresh, age),
		fmt.Sprintf("after the outage: relay backlog drained %s (sampled each second)", drained),
	}
}
