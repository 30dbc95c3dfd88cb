package taskfile

// The fields of a task file Kiln does not support, each with the reason it gives. ACR's fields not listed here
// and not read by Load are unknown to ACR as well.

// noSharedNetwork is why the fields of detached services and networks are refused.
const noSharedNetwork = "Kiln runs each step as a one-shot BuildKit container with no network shared between " +
	"steps, so a step cannot be a service that later steps reach by its id; run the service and its client " +
	"in one cmd step instead"

// rejectedTop are the top-level fields of ACR that Kiln refuses, and fields people write that ACR does not have.
var rejectedTop = map[string]string{
	"networks": noSharedNetwork,
	"volumes": "Kiln has no task volumes: every step sees the run's workspace at /workspace, and secrets " +
		"reach steps as {{.Secrets.ID}}",
	"totalTimeout": "ACR task files have no totalTimeout: a run's timeout is set on the task or the run " +
		"(--timeout), and each step's by stepTimeout and timeout",
}

// rejectedStep are the step fields of ACR that Kiln refuses.
var rejectedStep = map[string]string{
	"detach":     noSharedNetwork,
	"ports":      noSharedNetwork,
	"expose":     noSharedNetwork,
	"network":    noSharedNetwork,
	"isolation":  "isolation chooses Windows container isolation, and Kiln runs Linux containers under BuildKit",
	"privileged": "Kiln never runs a step privileged (BuildKit's security.insecure is not granted)",
	"keep":       "BuildKit removes a step's container when it ends; files a later step needs go in /workspace",
	"repeat":     "Kiln runs a step once, or again only on failure with retries",
	"volumeMounts": "Kiln has no task volumes: every step sees the run's workspace at /workspace, and secrets " +
		"reach steps as {{.Secrets.ID}}",
	"volumeMount": "Kiln has no task volumes: every step sees the run's workspace at /workspace, and secrets " +
		"reach steps as {{.Secrets.ID}}",
	"secret":          "declare secrets at the top of the file (secrets: - id: NAME) and use them as {{.Secrets.NAME}}",
	"cpus":            "Kiln does not limit a step's CPUs",
	"downloadRetries": "BuildKit retries pulls itself",
	"exitedWith":      "a step runs when the steps of its when: succeed (or fail with ignoreErrors)",
	"exitedWithout":   "a step runs when the steps of its when: succeed (or fail with ignoreErrors)",
	"retryOnErrors":   "retries: retries a step on any failure",
}

// stepFields are the step fields Kiln reads, with the kinds of step each applies to ("" for all).
var stepFields = map[string]string{
	"id": "", "build": "", "cmd": "", "push": "", "when": "", "env": "",
	"timeout": "", "startDelay": "", "retries": "", "retryDelay": "", "ignoreErrors": "",
	"workingDirectory":                "build cmd",
	"pull":                            "build cmd",
	"entryPoint":                      "cmd",
	"user":                            "cmd",
	"disableWorkingDirectoryOverride": "cmd",
	"cache":                           "",
}

const (
	topFieldNames  = "version, stepTimeout, workingDirectory, env, secrets, alias and steps"
	stepFieldNames = "id, build, cmd, push, when, env, workingDirectory, entryPoint, user, pull, " +
		"disableWorkingDirectoryOverride, cache, timeout, startDelay, retries, retryDelay and ignoreErrors"
)
