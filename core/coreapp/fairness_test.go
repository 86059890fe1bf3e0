package coreapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/taquilla/taquilla/core/payments"
	"github.com/taquilla/taquilla/shared/eventually"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/natstest"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/wire"
)

// ctlCall sends one control request, as taquilla ctl does.
func ctlCall(t *testing.T, nc *nats.Conn, subject string, req wire.ControlRequest) (wire.SaleStatus, error) {
	t.Helper()
	req.V, req.By = wire.Version, "test-operator"
	body, _ := json.Marshal(req)
	msg, err := nc.Request(subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	var reply wire.StoreReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		t.Fatal(err)
	}
	if err := reply.Err(); err != nil {
		return wire.SaleStatus{}, err
	}
	var st wire.SaleStatus
	return st, json.Unmarshal(reply.Data, &st)
}

// admissions follows the sale's stream and records every admitted session
// in order.
type admissions struct {
	mu   sync.Mutex
	list []string
}

func (a *admissions) follow(t *testing.T, url string) *natsq.Follower {
	_, js := natstest.MustConnect(t, url)
	f := natsq.NewFollower(js, sale, wire.Control{}, slog.New(slog.DiscardHandler))
	f.OnApply = func(_ uint64, _ wire.QueueMsg, res queue.Result) {
		a.mu.Lock()
		a.list = append(a.list, res.Admitted...)
		a.mu.Unlock()
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func (a *admissions) snapshot() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.list)
}

// TestCore_ScheduledOpening schedules a sale, lets 20 fans join the
// pre-queue, and checks that nobody is admitted before the opening, that
// the controller opens it on time with the committed seed, and that fans
// are admitted in the shuffled order, ahead of a fan who joined later.
func TestCore_ScheduledOpening(t *testing.T) {
	h := newHarness(t)
	core := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer core.stop()
	nc, js := natstest.MustConnect(t, h.url)
	var adm admissions
	f := adm.follow(t, h.url)

	st, err := ctlCall(t, nc, wire.SubjectCtlSchedule, wire.ControlRequest{Sale: sale, At: time.Now().Add(3 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Commitment) != 64 || st.OpensAt.IsZero() {
		t.Fatalf("status after schedule = %+v, want an opening and a commitment", st)
	}
	ctx := context.Background()
	for i := range 20 {
		if _, err := natsq.Join(ctx, js, sale, fmt.Sprintf("pre%02d", i), wire.DefaultLane, "test"); err != nil {
			t.Fatal(err)
		}
	}
	eventually.Check(t, 5*time.Second, func() error {
		var v queue.View
		f.Do(func(st *queue.State) { v = st.Lookup("pre05", time.Now()) })
		if v.State != queue.PreQueue || v.PreQueued != 20 {
			return fmt.Errorf("pre05 = %s with %d pre-queued", v.State, v.PreQueued)
		}
		return nil
	})
	if got := adm.snapshot(); len(got) != 0 {
		t.Fatalf("admitted %v before the opening", got)
	}
	if _, err := ctlCall(t, nc, wire.SubjectCtlSchedule, wire.ControlRequest{Sale: sale, At: time.Now().Add(-time.Minute)}); err == nil {
		t.Errorf("an opening in the past was accepted")
	}

	// The controller opens the sale at its time; then a late fan joins.
	eventually.Check(t, 10*time.Second, func() error {
		if len(adm.snapshot()) == 0 {
			return fmt.Errorf("nobody admitted yet")
		}
		return nil
	})
	if _, err := natsq.Join(ctx, js, sale, "late", wire.DefaultLane, "test"); err != nil {
		t.Fatal(err)
	}
	eventually.Check(t, 10*time.Second, func() error {
		if n := len(adm.snapshot()); n != 21 {
			return fmt.Errorf("%d of 21 admitted", n)
		}
		return nil
	})
	var round queue.Round
	f.Do(func(st *queue.State) { round = st.Audit().Rounds[0] })
	want := append(slices.Clone(round.Order), "late")
	if got := adm.snapshot(); !slices.Equal(got, want) {
		t.Errorf("admission order\n%v\nwant the shuffle order, then late\n%v", got, want)
	}
	audit, err := natsq.Audit(ctx, js, sale, "")
	if err != nil {
		t.Fatal(err)
	}
	if !audit.OK() || len(audit.Rounds) != 1 || !audit.Rounds[0].SeedOK || audit.AdmittedFans != 21 {
		t.Errorf("audit = %+v, want one verified round and 21 fans admitted in order", audit)
	}
	if _, err := ctlCall(t, nc, wire.SubjectCtlOpen, wire.ControlRequest{Sale: sale}); err == nil {
		t.Errorf("opening a sale that is open already succeeded")
	}
}

// TestCore_OpenNow opens a scheduled sale by hand before its time.
func TestCore_OpenNow(t *testing.T) {
	h := newHarness(t)
	core := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer core.stop()
	nc, js := natstest.MustConnect(t, h.url)
	var adm admissions
	adm.follow(t, h.url)

	if _, err := ctlCall(t, nc, wire.SubjectCtlSchedule, wire.ControlRequest{Sale: sale, At: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsq.Join(context.Background(), js, sale, "early", wire.DefaultLane, "test"); err != nil {
		t.Fatal(err)
	}
	st, err := ctlCall(t, nc, wire.SubjectCtlOpen, wire.ControlRequest{Sale: sale})
	if err != nil {
		t.Fatal(err)
	}
	if !st.OpensAt.IsZero() {
		t.Errorf("status after open still shows an opening at %s", st.OpensAt)
	}
	eventually.Check(t, 10*time.Second, func() error {
		if got := adm.snapshot(); !slices.Equal(got, []string{"early"}) {
			return fmt.Errorf("admitted %v, want [early]", got)
		}
		return nil
	})
}

// TestCore_LanesAndCodesControl sets lanes and codes through the control
// service and checks the validation.
func TestCore_LanesAndCodesControl(t *testing.T) {
	h := newHarness(t)
	core := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer core.stop()
	nc, _ := natstest.MustConnect(t, h.url)
	share := func(v int) *int { return &v }

	if _, err := ctlCall(t, nc, wire.SubjectCtlLane, wire.ControlRequest{Sale: sale, Lane: "bank", Value: share(30)}); err != nil {
		t.Fatal(err)
	}
	st, err := ctlCall(t, nc, wire.SubjectCtlCodes, wire.ControlRequest{Sale: sale, Lane: "bank", Value: share(1),
		Codes: []string{wire.CodeHash(sale, "A1"), wire.CodeHash(sale, "A2")}})
	if err != nil {
		t.Fatal(err)
	}
	var bank, general wire.LaneStatus
	for _, l := range st.Lanes {
		switch l.Name {
		case "bank":
			bank = l
		case wire.DefaultLane:
			general = l
		}
	}
	if bank.Share != 30 || bank.Codes != 2 || general.Share != 70 {
		t.Errorf("lanes = %+v, want bank 30%% with 2 codes and general 70%%", st.Lanes)
	}
	bad := []wire.ControlRequest{
		{Sale: sale, Lane: "access", Value: share(80)},         // 30 + 80 > 100
		{Sale: sale, Lane: "Bank!", Value: share(10)},          // invalid name
		{Sale: sale, Lane: wire.DefaultLane, Value: share(10)}, // general gets the rest
		{Sale: "no-such-sale", Lane: "bank", Value: share(10)}, // unknown sale
		{Sale: sale, Lane: "bank", Value: share(-1)},           // negative
	}
	for _, req := range bad {
		if _, err := ctlCall(t, nc, wire.SubjectCtlLane, req); err == nil {
			t.Errorf("lane request %+v (value %d) accepted", req, *req.Value)
		}
	}
	if _, err := ctlCall(t, nc, wire.SubjectCtlCodes, wire.ControlRequest{Sale: sale, Lane: "nolane", Value: share(1), Codes: []string{wire.CodeHash(sale, "x")}}); err == nil {
		t.Errorf("codes for a lane that does not exist accepted")
	}
	if _, err := ctlCall(t, nc, wire.SubjectCtlCodes, wire.ControlRequest{Sale: sale, Lane: "bank", Value: share(1), Codes: []string{"not-a-hash"}}); err == nil {
		t.Errorf("a code that is not a hash accepted")
	}
}

// TestCore_AutomaticRate turns the automatic mode on and checks that the
// core records rates within the bounds, and that a fixed rate turns it off.
func TestCore_AutomaticRate(t *testing.T) {
	h := newHarness(t)
	h.cfg.Admission.Auto.Every = 100 * time.Millisecond
	core := h.startCore(payments.NewSim(payments.SimConfig{}))
	defer core.stop()
	nc, _ := natstest.MustConnect(t, h.url)
	lo, hi := 100, 400
	if _, err := ctlCall(t, nc, wire.SubjectCtlAuto, wire.ControlRequest{Sale: sale, Value: &lo, Max: &hi}); err != nil {
		t.Fatal(err)
	}
	f := core.core.Follower(sale)
	eventually.Check(t, 5*time.Second, func() error {
		var c wire.Control
		f.Do(func(st *queue.State) { c = st.Control() })
		if c.RatePerMinute != hi || c.AutoMax != hi {
			return fmt.Errorf("control = %+v, want the rate at the maximum %d of an idle, healthy core", c, hi)
		}
		return nil
	})
	bad := []struct{ lo, hi int }{{0, 10}, {50, 10}, {1, 2_000_000}}
	for _, b := range bad {
		if _, err := ctlCall(t, nc, wire.SubjectCtlAuto, wire.ControlRequest{Sale: sale, Value: &b.lo, Max: &b.hi}); err == nil {
			t.Errorf("auto bounds %d..%d accepted", b.lo, b.hi)
		}
	}
	fixed := 250
	if _, err := ctlCall(t, nc, wire.SubjectCtlRate, wire.ControlRequest{Sale: sale, Value: &fixed}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // several automatic steps, which must change nothing now
	var c wire.Control
	f.Do(func(st *queue.State) { c = st.Control() })
	if c.RatePerMinute != fixed || c.AutoMax != 0 {
		t.Errorf("after ctl rate the control is %+v, want a fixed rate of %d", c, fixed)
	}
}
