// Package tmpl renders the Go templates Kiln takes from outside (image tags, task files with their values)
// under bounds: a time limit, an output-size limit, a limit on each value a template makes and on all of them
// together, and a bounded pool of workers. trigger/ (tags, task files checked at submission) and scheduler/
// (task files at run time) both render through it, so the rule is written once. Of Kiln's packages it imports
// only proto.
//
// # Why each bound holds
//
// text/template cannot be interrupted: Execute runs until the template ends. So a render is made to check its
// budget often enough that it can run for no long stretch without checking it. After parsing, Parse rewrites
// the parse tree of every template in the set:
//
//   - every {{range PIPE}} becomes {{range PIPE | guard}}: the guard refuses a range over an integer above
//     Limits.Range, or over a list or map of more elements, before the first iteration. {{range 100000000}}
//     and {{range 20000000}}xxxxxxxxxx{{end}} fail there, at once, whatever their bodies hold;
//   - every range body and every template body (the file's, and each {{define}} and {{block}}) starts with a
//     tick that checks the budget: a loop iterates, and a template recurses, only through a tick, so nested
//     ranges and recursion stop at the time limit or when the caller cancels;
//   - every action that prints a value prints it through a guard that measures it first, so that printing a
//     list built up by mutation cannot make fmt format more than the output may hold; every other pipeline
//     (an if's, a with's, an assignment's, a template call's) ends in a guard that checks the budget;
//   - a pipeline may hold at most 256 arguments, calls and subexpressions: text/template's comparisons (eq,
//     lt, ...) are not wrapped and take time in proportion to the strings they compare, so only so many of
//     them run between two checks.
//
// Between two checks a render walks a bounded stretch of the template (no loop, no template call and no
// pipeline without a check), so its time is the sum of a bounded number of function calls. Every function the template calls is wrapped:
// the wrapper checks the budget, measures its arguments (a string by its length, a list or map by the sum of
// its elements, shared elements counted each time, no more than Limits.Range elements and 16 levels deep) and
// refuses them together over Limits.Output, calls the function and measures its result, which counts against
// Limits.Output alone and, with every other result, against the render's allocation budget (16 times the
// output limit). The functions whose output can be much larger than their input, or whose time can be much
// longer, are replaced by versions that compute the size first: repeat, indent, nindent, replace, wrap,
// wrapWith, join, regexReplaceAll and its kin, randAlpha and its kin, until, untilStep, seq, printf (widths,
// precisions, and what its verbs and explicit argument indexes can print), uniq and without, and Sprig's
// regular expression functions refuse a pattern and text whose lengths multiplied pass 64 Mi. So no one call
// runs long or allocates much,
// and the rendered text, written through a writer that fails past Limits.Output, stops {{range 20000}} of a
// long text as soon as it passes the limit: {{ repeat 200000000 "x" | len }} is refused before strings.Repeat
// runs.
//
// The functions with no use in a build file that are costly or reach outside the template (key and
// certificate generation, bcrypt, htpasswd, AES, random bytes, the environment, DNS) are not in Sprig's map
// at all: a template that names one fails to parse. Dropped lists them with the reason.
//
// A render runs in a goroutine holding one of a fixed number of worker slots (half the CPUs, at least one).
// The caller waits for it until the time limit or its context ends; the render then stops at its next check
// and gives its slot back. Should a render escape every check, it keeps its slot while it runs, so that
// runaway renders can take at most the pool's cores, and the caller has its answer at the time limit all the
// same.
//
// Errors of a limit are *LimitError: the template's name, the line and the limit, in a message that never
// holds the expansion.
package tmpl
