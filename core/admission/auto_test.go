package admission_test

import (
	"testing"
	"time"

	"github.com/taquilla/taquilla/core/admission"
)

func TestAutopilot_RaisesWhileHealthy(t *testing.T) {
	a := admission.NewAutopilot(admission.DefaultAutoConfig())
	h := admission.Health{}
	rate, _ := a.Next(100, 50, 160, h, true)
	for range 10 {
		h.Commits += 1000
		h.CommitTime += 1000 * 10 * time.Millisecond
		h.Retries += 10
		rate, _ = a.Next(rate, 50, 160, h, true)
	}
	if rate != 160 {
		t.Errorf("after ten healthy steps the rate is %d, want the maximum 160", rate)
	}
}

func TestAutopilot_CutsWhenUnhealthy(t *testing.T) {
	cases := []struct {
		name string
		step admission.Health
	}{
		{"slow transactions", admission.Health{Commits: 100, CommitTime: 100 * 500 * time.Millisecond}},
		{"serialization retries", admission.Health{Commits: 100, Retries: 80, CommitTime: 100 * time.Millisecond}},
		{"carts expiring", admission.Health{Commits: 100, HoldsExpired: 90, CommitTime: 100 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := admission.NewAutopilot(admission.DefaultAutoConfig())
			var h admission.Health
			a.Next(1000, 100, 2000, h, true)
			h.Commits += tc.step.Commits
			h.CommitTime += tc.step.CommitTime
			h.Retries += tc.step.Retries
			h.HoldsExpired += tc.step.HoldsExpired
			rate, reason := a.Next(1000, 100, 2000, h, true)
			if rate != 700 || reason != tc.name {
				t.Errorf("Next = %d (%s), want 700 (%s)", rate, reason, tc.name)
			}
			for range 20 {
				h.Commits += tc.step.Commits
				h.CommitTime += tc.step.CommitTime
				h.Retries += tc.step.Retries
				h.HoldsExpired += tc.step.HoldsExpired
				rate, _ = a.Next(rate, 100, 2000, h, true)
			}
			if rate != 100 {
				t.Errorf("after 20 unhealthy steps the rate is %d, want the minimum 100", rate)
			}
		})
	}
}

func TestAutopilot_StartsWithinBounds(t *testing.T) {
	a := admission.NewAutopilot(admission.DefaultAutoConfig())
	if rate, _ := a.Next(5000, 100, 600, admission.Health{}, true); rate != 600 {
		t.Errorf("a rate of 5000 with bounds 100..600 starts at %d, want 600", rate)
	}
}

func TestAutopilot_HoldsWhileIdle(t *testing.T) {
	a := admission.NewAutopilot(admission.DefaultAutoConfig())
	h := admission.Health{}
	a.Next(300, 100, 2000, h, false)
	for range 5 {
		h.Commits += 100
		h.CommitTime += 100 * time.Millisecond
		if rate, reason := a.Next(300, 100, 2000, h, false); rate != 300 || reason != "idle" {
			t.Fatalf("Next with nobody waiting = %d (%s), want 300 (idle)", rate, reason)
		}
	}
}
