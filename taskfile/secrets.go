package taskfile

import (
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Secret is one entry of the file's secrets: the id of a secret in Kiln's store (kiln secret set ID), which
// the file reads as {{.Secrets.ID}}. ACR's secrets name an Azure Key Vault secret (keyvault, clientID); Kiln's
// name its own, under the same field.
type Secret struct {
	ID   string
	Line int
}

// decodeSecrets reads the file's secrets: a list of {id: NAME}.
func (l *loader) decodeSecrets(n *yaml.Node) ([]Secret, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, l.errorf(n, "secrets", "must be a list, as - id: NAME, not %s", kindName(n))
	}
	var out []Secret
	seen := map[string]int{}
	for i, item := range n.Content {
		field := "secrets[" + strconv.Itoa(i) + "]"
		item = resolveAlias(item)
		pairs, err := l.mapping(item, field)
		if err != nil {
			return nil, err
		}
		s := Secret{Line: item.Line}
		var idNode *yaml.Node
		for _, p := range pairs {
			switch p.key {
			case "id":
				if s.ID, err = l.scalar(p.v, field+".id"); err != nil {
					return nil, err
				}
				idNode = p.v
			case "keyvault", "clientID":
				return nil, l.errorf(p.k, field+"."+p.key, "not supported by Kiln (Kiln reads secrets from its own "+
					"store, not from Azure Key Vault: drop %s and store the value with kiln secret set NAME)", p.key)
			default:
				return nil, l.errorf(p.k, field+"."+p.key, "unknown field: a secret has an id")
			}
		}
		if idNode == nil {
			return nil, l.errorf(item, field+".id", "missing: a secret has the id of a secret in Kiln's store")
		}
		if !validSecretName(s.ID) {
			return nil, l.errorf(idNode, field+".id", "%q is not a secret's name: %s", s.ID, secretNameRule)
		}
		if first, ok := seen[s.ID]; ok {
			return nil, l.errorf(idNode, field+".id", "secret %q is declared twice (first on line %d)", s.ID, first)
		}
		seen[s.ID] = s.Line
		out = append(out, s)
	}
	return out, nil
}

// secretNameRule is the rule of Kiln's secret names, which are those of its tasks.
const secretNameRule = "a secret's name is 1 to 50 ASCII letters, digits, '-' or '_', starting with a letter or digit"

// validSecretName reports whether name follows secretNameRule.
func validSecretName(name string) bool {
	if name == "" || len(name) > 50 || name[0] == '-' || name[0] == '_' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(rune(c)) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// checkSecrets checks the secrets the templates read against those the file declares: each must be declared
// (ACR renders an undeclared one as nothing; Kiln refuses it), and for Load each declared one needs a value.
func (l *loader) checkSecrets(f *File) error {
	declared := map[string]bool{}
	for _, s := range f.Secrets {
		declared[s.ID] = true
	}
	for _, r := range l.refs {
		if !declared[r.id] {
			return &Error{File: l.name, Line: r.line, Field: "{{.Secrets." + r.id + "}}",
				Msg: fmt.Sprintf("secret %q is not declared: add it to the file's secrets (- id: %s)", r.id, r.id)}
		}
	}
	if l.check {
		return nil
	}
	for i, s := range f.Secrets {
		if _, ok := l.data.Secrets[s.ID]; !ok {
			return &Error{File: l.name, Line: s.Line, Field: "secrets[" + strconv.Itoa(i) + "].id",
				Msg: fmt.Sprintf("secret %q has no value: set it with kiln secret set %s", s.ID, s.ID)}
		}
	}
	return nil
}
