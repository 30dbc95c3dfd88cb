package taskfile

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// startAtOnce is the when entry of a step that waits for nothing.
const startAtOnce = "-"

// resolveWhen checks the steps' ids and fills each step's After from its when, as ACR builds its graph: with no
// when a step waits for the one before it (the first for none); with when: ["-"] it starts at once; with ids it
// waits for those steps. ACR adds the steps to its graph in the file's order and lets a step wait only for one
// already added, so a step can wait only for steps above it, and the steps can never wait in a circle.
func (l *loader) resolveWhen(steps []Step, whens [][]*yaml.Node, idNodes []*yaml.Node) error {
	index := map[string]int{}
	for i, s := range steps {
		if first, ok := index[s.ID]; ok {
			return l.errorf(idNodes[i], "steps["+strconv.Itoa(i)+"].id",
				"id %q is already the id of steps[%d] (line %d)", s.ID, first, steps[first].Line)
		}
		index[s.ID] = i
	}
	for i := range steps {
		s := &steps[i]
		field := "steps[" + strconv.Itoa(i) + "].when"
		if len(s.When) == 0 {
			if i > 0 {
				s.After = []int{i - 1}
			}
			continue
		}
		seen := map[int]bool{}
		for j, id := range s.When {
			at := whens[i][j]
			entry := field + "[" + strconv.Itoa(j) + "]"
			if id == startAtOnce {
				if len(s.When) > 1 {
					return l.errorf(at, entry, `"-" (start at once) cannot be given with step ids`)
				}
				continue
			}
			k, ok := index[id]
			switch {
			case !ok:
				return l.errorf(at, entry, "no step has the id %q", id)
			case k == i:
				return l.errorf(at, entry, "a step cannot wait for itself")
			case k > i:
				return l.errorf(at, entry, "step %q comes later in the file (line %d): as in ACR, a step can wait "+
					"only for steps above it", id, steps[k].Line)
			}
			if !seen[k] {
				seen[k] = true
				s.After = append(s.After, k)
			}
		}
	}
	return nil
}
