// Package taskfile reads ACR's multi-step task files (acb.yaml): it renders them, parses them and checks
// them, and returns a File whose steps have every default applied, ready to run. It does no I/O. trigger/
// calls Check when a file is submitted or a task is saved with one; scheduler/ calls Load when it runs one.
// Of Kiln's packages it imports only proto.
//
// # The format, as ACR has it
//
// What follows is from Microsoft's "ACR Tasks reference: YAML" (learn.microsoft.com,
// container-registry-tasks-reference-yaml) and from ACR's own runner, Azure/acr-builder, where the reference
// is silent.
//
// Task properties: version (1.0-preview-1, v1.0.0, v1.1.0; v1.0.0 when absent), stepTimeout (seconds, 600 by
// default), workingDirectory (/workspace on Linux), env (KEY=VALUE strings), secrets (each an id with an Azure
// Key Vault URL, keyvault, and a managed identity, clientID), networks and volumes. There is no totalTimeout:
// a run's timeout is set on the task or the run (az acr task create --timeout), and the reference says the
// steps' timeouts should add up to it.
//
// Steps are of three types: build, a docker build command line ("-t IMAGE -f Dockerfile CONTEXT", any docker
// build flag); push, a list of images (a YAML list, not a string); cmd, "IMAGE [ARGS...]", run as a
// container. A step has exactly one of them. Its other properties are id, when, env, workingDirectory,
// entryPoint, user, timeout, startDelay, retries, retryDelay, ignoreErrors, detach, ports, expose, network,
// isolation, keep, privileged, pull, repeat, disableWorkingDirectoryOverride, secret and volumeMounts;
// acr-builder also reads cache, cpus, downloadRetries, exitedWith, exitedWithout and retryOnErrors.
//
// A step without an id is acb_step_N, N its index from 0. An id names the step's container, and other steps
// reach a detached step by it as a host name. when: ["-"] starts a step at once; when: [ids] waits for those
// steps; no when waits for the step before (the first waits for nothing). acr-builder adds the steps to its
// graph in the file's order and refuses an edge from a step not yet added, so a step can wait only for steps
// above it: a cycle cannot be written. A step's timeout defaults to stepTimeout, its retryDelay to 5 seconds
// (0 counts as unset for both), and its env is the task's env under its own, key by key.
//
// Templates: the whole file is a Go template with Sprig's functions (TxtFuncMap), rendered before it is
// parsed. It reads .Run (ID, Commit, Repository, Branch, GitTag, TriggeredBy, Registry, RegistryName, Date,
// SharedVolume, OS, OSVersion, Architecture, TaskName; Date as yyyyMMdd-HHmmssz in UTC; RegistryName the
// part of Registry before its first dot; SharedVolume the name of the volume mounted at /workspace), .Values
// (a values file, then --set K=V over it) and .Secrets (by id). To learn which secrets exist, acr-builder
// renders the file once with no secrets, parses it, resolves the secrets it declares and renders it again.
// ACR renders a missing key as nothing.
//
// Aliases, from version v1.1.0: before the template is rendered, $NAME is replaced by the alias NAME's value.
// The predefined aliases ID, SharedVolume, Registry, RegistryName, Date, OS, Architecture, Commit and Branch
// stand for the run variable of the same name (so $Registry is {{.Run.Registry}}); the image aliases acr, az,
// bash, curl and cssc stand for images on mcr.microsoft.com, as $bash and also without the $ as the first word
// of a cmd. The file's own aliases are under alias: values: (names of letters and digits, winning over the predefined ones);
// alias: src: lists files or URLs of more; alias: directive: changes $ for another character. $$ is a literal
// $, and $NAME that is no alias stays as written. The alias block is cut out of the file and rendered first,
// with .Run.
//
// # What Kiln does differently
//
//   - Fields Kiln cannot honour are refused, each with its name, its line and the reason, never ignored: detach,
//     ports, expose, network and networks (BuildKit runs each step as a one-shot container, with no network
//     shared between steps, so there are no services reachable by id), isolation, privileged, keep, repeat,
//     volumes, volumeMounts, a step's secret, keyvault and clientID (secrets come from Kiln's own store: kiln
//     secret set NAME), alias: src: (Load fetches nothing), totalTimeout, and acr-builder's extra fields. So are
//     docker build flags other than -t/--tag/--image, -f/--file, --build-arg, --label, --target, --platform,
//     --no-cache and --pull, and a build context that is a URL.
//   - A missing key is an error that names it: {{.Values.x}} with no value x fails, where ACR renders nothing. A
//     value that may be absent is read as {{index .Values "x" | default "d"}}.
//   - Templates render under bounds (taskfile/tmpl: a time limit, a limit on the rendered text, on each value
//     and on all values made, and on a range's iterations), and Sprig's functions that reach outside the file
//     (env, expandenv, getHostByName) or cost far more than a build file has use for (key and certificate
//     generation, bcrypt, htpasswd, AES, randBytes) are left out: tmpl.Dropped lists them with the reason.
//   - cache: enabled is what Kiln always does (BuildKit's cache); cache: disabled is --no-cache for a build
//     step, and changes nothing for a cmd step, which runs every time.
//   - A cmd step's image with no registry is Docker Hub's, as docker run takes it (busybox is
//     docker.io/library/busybox:latest), unless an earlier build step of the run tagged it. A cmd step of the
//     docker CLI (docker, docker:TAG) is refused: there is no Docker daemon, steps run on BuildKit.
//   - A secret a template reads must be declared under secrets:, and must be read by a name written out
//     ({{.Secrets.NAME}}, {{$.Secrets.NAME}} or {{index .Secrets "NAME"}}): that is how Check learns, without
//     the values, which secrets a run needs. Only those secrets reach the template, and no error shows a
//     secret's value.
//   - Run.RegistryName is the part before the first dot for an Azure registry only (*.azurecr.*); any other
//     registry's host is given whole, since "127" for 127.0.0.1:5000 would name nothing. Run.SharedVolume is
//     the workspace's path, /workspace: Kiln has no Docker volume to name.
//   - The version is read from the first top-level version: line wherever it is; acr-builder reads it only from
//     the file's first line that is not a comment.
//   - A step's id must be a valid container name (letters, digits, '_', '.', '-'); ACR only forbids blanks, but
//     uses the id as a container's name. ACR sets no bounds on the numbers; Kiln takes timeouts of at most 8
//     hours (28800 seconds), startDelay and retryDelay of at most an hour and at most 10 retries.
//   - entryPoint, user and disableWorkingDirectoryOverride apply to cmd steps, workingDirectory and pull to cmd
//     and build steps; on a push step, or entryPoint on a build step, they are refused, as they have nothing to
//     act on in Kiln. A build step's env serves only --build-arg KEY (the value of KEY in the env, as docker
//     build takes it from its own environment).
//
// # Two passes
//
// A file's secrets are known only once it is rendered and parsed, and their values are needed to render it.
// Check renders it with a placeholder for each secret it reads and a sample value for each empty run variable,
// checks everything Load checks but the values, and returns the File, whose Secrets list the secrets the run
// will need. The caller that runs the file fetches those from Kiln's store and calls Load with them.
//
// Lines in errors are those of the rendered file, which are the source's unless a template action writes line
// breaks; a YAML error quotes its line as rendered.
package taskfile
