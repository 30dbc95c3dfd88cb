package basedeps

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/kilnbuild/kiln/proto"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Dependency is a base image a Dockerfile builds on, as known from the Dockerfile alone, before any build.
type Dependency struct {
	Ref      string // the base as written after ARG expansion, normalized to a full reference (index.docker.io/library/alpine:latest)
	Runtime  bool   // true for the base of the final stage built (the runtime dependency); false for build-time bases
	Platform string // FROM --platform=..., after expansion; "" when none
	Stage    string // the stage name (AS x) or its index, for messages
}

// Dependencies parses dockerfile with BuildKit's own parser and returns every base image it builds on, the
// way BuildKit's Dockerfile frontend resolves them: FROM lines expand the ARGs declared before the first FROM,
// whose defaults buildArgs override; a FROM or COPY --from or RUN --mount=from naming a stage follows that
// stage; only the stages that target (the last stage when "") needs count. The base of the final stage,
// followed through stage references, is the runtime dependency; the others are build-time ones. Each
// reference appears once, in the order the Dockerfile first names it. scratch is no base.
//
// BuildKit's automatic platform ARGs (BUILDPLATFORM, TARGETARCH, ...) are not known before a build: a
// --platform keeps them as written ($BUILDPLATFORM), and a base image that depends on one is refused.
//
// A Dockerfile that does not parse, a base that expands to nothing or is not an image reference, and an
// unknown target are kind proto.Invalid.
func Dependencies(dockerfile []byte, buildArgs map[string]string, target string) ([]Dependency, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "parsing Dockerfile: %w", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, proto.Errorf(proto.Invalid, "parsing Dockerfile: %w", err)
	}
	if len(stages) == 0 {
		return nil, proto.Errorf(proto.Invalid, "parsing Dockerfile: it has no FROM, so no stage to build")
	}
	lex := shell.NewLex(res.EscapeToken)
	targetStage := target
	if targetStage == "" {
		targetStage = stages[len(stages)-1].Name
	}
	env, err := newFromEnv(lex, metaArgs, buildArgs, targetStage)
	if err != nil {
		return nil, err
	}
	g, err := newStageGraph(lex, env, stages)
	if err != nil {
		return nil, err
	}
	final := len(g.stages) - 1
	if target != "" {
		i, ok := g.byName[strings.ToLower(target)]
		if !ok {
			return nil, proto.Errorf(proto.Invalid, "target stage %q is not in the Dockerfile", target)
		}
		final = i
	}
	return g.dependencies(final), nil
}

// stageGraph is the stages of a Dockerfile and what each builds on.
type stageGraph struct {
	stages []stageNode
	byName map[string]int // lower-cased stage name to index; a later stage of the same name wins, as in BuildKit
}

// stageNode is one stage: its FROM and the stages and images its commands read from.
type stageNode struct {
	label    string   // the stage's name, or its index
	base     int      // the index of the earlier stage FROM names; -1 when it names an image or scratch
	image    string   // the normalized base image; "" for scratch or a stage
	platform string   // FROM --platform, expanded
	sources  []source // COPY --from and RUN --mount=from, in order
}

// source is what a COPY --from or a RUN --mount=from reads: a stage (stage >= 0) or an image.
type source struct {
	stage int
	image string
}

// newStageGraph expands and resolves the FROM line of each stage, then the sources of its commands.
func newStageGraph(lex *shell.Lex, env *fromEnv, stages []instructions.Stage) (*stageGraph, error) {
	g := &stageGraph{byName: make(map[string]int)}
	for i, st := range stages {
		n, err := g.from(lex, env, i, st)
		if err != nil {
			return nil, err
		}
		g.stages = append(g.stages, n)
		if st.Name != "" {
			g.byName[strings.ToLower(st.Name)] = i
		}
	}
	for i, st := range stages {
		for _, cmd := range st.Commands {
			srcs, err := g.sources(lex, cmd)
			if err != nil {
				return nil, err
			}
			g.stages[i].sources = append(g.stages[i].sources, srcs...)
		}
	}
	return g, nil
}

// from resolves the FROM line of stage i: an earlier stage, scratch, or an image. Only stages before it can be
// named, as in BuildKit.
func (g *stageGraph) from(lex *shell.Lex, env *fromEnv, i int, st instructions.Stage) (stageNode, error) {
	n := stageNode{label: st.Name, base: -1}
	if n.label == "" {
		n.label = strconv.Itoa(i)
	}
	line := lineOf(st.Location)
	base, _, err := lex.ProcessWord(st.BaseName, env)
	if err != nil {
		return n, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: %w", line, st.SourceCode, err)
	}
	if base == "" {
		return n, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: the base image is empty after ARG expansion", line, st.SourceCode)
	}
	if st.Platform != "" {
		n.platform, _, err = lex.ProcessWord(st.Platform, env)
		if err != nil {
			return n, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: %w", line, st.SourceCode, err)
		}
		if n.platform == "" {
			return n, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: the platform is empty after ARG expansion", line, st.SourceCode)
		}
	}
	if j, ok := g.byName[strings.ToLower(base)]; ok {
		n.base = j
		return n, nil
	}
	if base == scratch {
		return n, nil
	}
	if arg := env.unknownIn(base); arg != "" {
		return n, &proto.Error{Code: proto.Invalid, Err: errKnownWhenBuilding, Message: fmt.Sprintf(
			"Dockerfile line %d: %s: the base image depends on %s, which is known only when building", line, st.SourceCode, arg)}
	}
	if n.image, err = Normalize(base); err != nil {
		return n, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: %w", line, st.SourceCode, err)
	}
	return n, nil
}

// sources returns what cmd reads from other stages or images: COPY --from=<stage|index|image> and
// RUN --mount=from=<stage|image>. BuildKit allows no variables in either.
func (g *stageGraph) sources(lex *shell.Lex, cmd instructions.Command) ([]source, error) {
	var froms []string
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		if c.From == "" {
			return nil, nil
		}
		if w, _, err := lex.ProcessWord(c.From, shell.EnvsFromSlice(nil)); err != nil || w != c.From {
			return nil, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: COPY --from does not expand variables", lineOf(c.Location()), c)
		}
		if i, err := strconv.Atoi(c.From); err == nil {
			if i < 0 || i >= len(g.stages) {
				return nil, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: there is no stage %d", lineOf(c.Location()), c, i)
			}
			return []source{{stage: i}}, nil
		}
		froms = []string{c.From}
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				froms = append(froms, m.From)
			}
		}
	}
	var srcs []source
	for _, from := range froms {
		if i, ok := g.byName[strings.ToLower(from)]; ok {
			srcs = append(srcs, source{stage: i})
			continue
		}
		if from == scratch {
			continue
		}
		ref, err := Normalize(from)
		if err != nil {
			return nil, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: %w", lineOf(cmd.Location()), cmd, err)
		}
		srcs = append(srcs, source{stage: -1, image: ref})
	}
	return srcs, nil
}

// dependencies returns the images the stage final needs, through its base stages and sources, in the order
// the Dockerfile names them, each once; the image at the end of final's chain of bases is the runtime one.
func (g *stageGraph) dependencies(final int) []Dependency {
	reached := make([]bool, len(g.stages))
	g.reach(final, reached)
	runtime := final
	for g.stages[runtime].base >= 0 {
		runtime = g.stages[runtime].base
	}

	var deps []Dependency
	at := make(map[string]int)
	add := func(d Dependency) {
		i, ok := at[d.Ref]
		switch {
		case !ok:
			at[d.Ref] = len(deps)
			deps = append(deps, d)
		case d.Runtime:
			deps[i] = d
		}
	}
	for i, n := range g.stages {
		if !reached[i] {
			continue
		}
		if n.image != "" {
			add(Dependency{Ref: n.image, Runtime: i == runtime, Platform: n.platform, Stage: n.label})
		}
		for _, s := range n.sources {
			if s.stage < 0 {
				add(Dependency{Ref: s.image, Stage: n.label})
			}
		}
	}
	return deps
}

// reach marks stage i and every stage it builds on or reads from.
func (g *stageGraph) reach(i int, reached []bool) {
	if reached[i] {
		return
	}
	reached[i] = true
	n := g.stages[i]
	if n.base >= 0 {
		g.reach(n.base, reached)
	}
	for _, s := range n.sources {
		if s.stage >= 0 {
			g.reach(s.stage, reached)
		}
	}
}

// errKnownWhenBuilding is the cause of the error of a base image that depends on the platform of the build: the
// Dockerfile is good, only its bases cannot be known before a build.
var errKnownWhenBuilding = errors.New("the base image depends on the platform of the build")

// scratch is the FROM that starts from an empty filesystem.
const scratch = "scratch"

// Normalize returns ref as a full reference: registry, repository and tag or digest.
func Normalize(ref string) (string, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", err
	}
	return r.Name(), nil
}

// Tracked reports whether ref (normalized) names a tag, which may move, rather than a digest, which cannot.
func Tracked(ref string) bool {
	_, err := name.NewTag(ref, name.StrictValidation)
	return err == nil
}

// lineOf returns the first line of a location in the Dockerfile, or 0 when it has none.
func lineOf(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// platformArgs are the ARGs BuildKit sets from the build and target platforms, longer names first so that
// unknownIn names TARGETOSVERSION rather than TARGETOS.
var platformArgs = []string{
	"BUILDPLATFORM", "BUILDOSVERSION", "BUILDOS", "BUILDARCH", "BUILDVARIANT",
	"TARGETPLATFORM", "TARGETOSVERSION", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
}

// fromEnv is what FROM lines can expand: the ARGs declared before the first FROM and BuildKit's automatic
// ones. A platform ARG that no build arg or ARG default sets stands for itself ($TARGETARCH), since the
// platform is known only when building. It is a shell.EnvGetter.
type fromEnv struct {
	keys   []string
	values map[string]string
}

// newFromEnv sets BuildKit's automatic ARGs, then each ARG of metaArgs in order: its build arg when buildArgs
// has one, otherwise its default expanded with what came before, as BuildKit's frontend does.
func newFromEnv(lex *shell.Lex, metaArgs []instructions.ArgCommand, buildArgs map[string]string, target string) (*fromEnv, error) {
	env := &fromEnv{values: make(map[string]string)}
	for _, k := range platformArgs {
		env.set(k, "$"+k)
	}
	if target == "" {
		target = "default"
	}
	env.set("TARGETSTAGE", target)
	for k, v := range buildArgs {
		if _, ok := env.values[k]; ok {
			env.set(k, v)
		}
	}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			if v, ok := buildArgs[kv.Key]; ok {
				env.set(kv.Key, v)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, env)
			if err != nil {
				return nil, proto.Errorf(proto.Invalid, "Dockerfile line %d: %s: %w", lineOf(cmd.Location()), &cmd, err)
			}
			env.set(kv.Key, v)
		}
	}
	return env, nil
}

func (e *fromEnv) set(k, v string) {
	if _, ok := e.values[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.values[k] = v
}

// Get returns the value of the ARG k.
func (e *fromEnv) Get(k string) (string, bool) {
	v, ok := e.values[k]
	return v, ok
}

// Keys returns the names of the ARGs set, in the order they were first set.
func (e *fromEnv) Keys() []string { return e.keys }

// unknownIn returns the first platform ARG that s still holds unexpanded, or "".
func (e *fromEnv) unknownIn(s string) string {
	for _, k := range platformArgs {
		if e.values[k] == "$"+k && strings.Contains(s, "$"+k) {
			return k
		}
	}
	return ""
}
