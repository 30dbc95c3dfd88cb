package tmpl

import (
	"context"
	"errors"
	"reflect"
	"sync/atomic"
)

// budget is what one render may still spend. The render's goroutine reads and charges it; the flag that stops
// it is set from outside, when the time limit passes or the caller cancels.
type budget struct {
	lim       Limits
	allocated int                        // bytes of the values the functions made so far
	steps     int                        // values walked since the flag was last read
	stopped   atomic.Pointer[LimitError] // why the render must stop, once it must
}

func newBudget(lim Limits) *budget {
	return &budget{lim: lim}
}

// stop tells the render to stop at its next check, for the reason ctx ended.
func (b *budget) stop(cause error) {
	var err *LimitError
	if errors.Is(cause, context.DeadlineExceeded) {
		err = limitf("rendering took longer than the %s time limit", b.lim.Time)
	} else {
		err = limitf("rendering was canceled")
	}
	b.stopped.CompareAndSwap(nil, err)
}

// stopErr returns why the render must stop, or nil.
func (b *budget) stopErr() *LimitError {
	return b.stopped.Load()
}

// check panics with a *LimitError once the render must stop: text/template turns a function's panic into the
// error Execute returns.
func (b *budget) check() {
	if err := b.stopErr(); err != nil {
		panic(err)
	}
}

// size returns what v weighs: a string its length, a list or map the sum of its elements with 16 bytes for
// each, any other value 16 bytes. It panics with a *LimitError once the sum passes limit, or when v holds more
// than Limits.Range elements in one list or map or nests deeper than maxDepth, so its own time is bounded.
func (b *budget) size(v reflect.Value, limit int, what string) int {
	n := 0
	b.walk(v, 0, &n, limit, what)
	return n
}

func (b *budget) walk(v reflect.Value, depth int, n *int, limit int, what string) {
	if b.steps++; b.steps >= 4096 {
		b.steps = 0
		b.check()
	}
	add := func(k int) {
		if *n += k; *n > limit {
			panic(limitf("%s is over the %s limit", what, Size(limit)))
		}
	}
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			add(16)
			return
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		add(v.Len())
	case reflect.Slice, reflect.Array, reflect.Map:
		if depth >= maxDepth {
			panic(limitf("%s nests lists or maps deeper than %d levels", what, maxDepth))
		}
		if v.Len() > b.lim.Range {
			panic(limitf("%s holds %d elements, over the limit of %d", what, v.Len(), b.lim.Range))
		}
		add(16 + 16*v.Len())
		if v.Kind() == reflect.Map {
			for it := v.MapRange(); it.Next(); {
				b.walk(it.Key(), depth+1, n, limit, what)
				b.walk(it.Value(), depth+1, n, limit, what)
			}
			return
		}
		if k := v.Type().Elem().Kind(); k != reflect.Interface && k != reflect.String && k != reflect.Slice &&
			k != reflect.Map && k != reflect.Pointer && k != reflect.Array {
			return // numbers, bools: counted with the list
		}
		for i := 0; i < v.Len(); i++ {
			b.walk(v.Index(i), depth+1, n, limit, what)
		}
	default:
		add(16)
	}
}

// charge counts a value a function made against the output limit, which no one value may pass, and against
// the render's allocation budget.
func (b *budget) charge(v reflect.Value, what string) {
	n := b.size(v, b.lim.Output, what)
	if b.allocated += n; b.allocated > allocFactor*b.lim.Output {
		panic(limitf("the values the template made are over the %s limit", Size(allocFactor*b.lim.Output)))
	}
}
