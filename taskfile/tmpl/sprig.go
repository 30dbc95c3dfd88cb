package tmpl

import (
	"maps"
	"text/template"
)

// Dropped lists the functions of Sprig (v3.3.0) that Kiln's templates do not have, and why: they reach outside
// the template, or cost far more than a build file has use for, in the process that renders it.
var Dropped = map[string]string{
	"env":                      "it would read the environment of the Kiln server, its credentials among it",
	"expandenv":                "it would read the environment of the Kiln server, its credentials among it",
	"getHostByName":            "it would make a DNS query from the Kiln server",
	"genPrivateKey":            "key generation takes seconds of CPU in the Kiln server and has no use in a build file",
	"derivePassword":           "it runs scrypt, seconds of CPU in the Kiln server, and has no use in a build file",
	"buildCustomCert":          "certificate generation has no use in a build file",
	"genCA":                    "key and certificate generation takes seconds of CPU and has no use in a build file",
	"genCAWithKey":             "certificate generation has no use in a build file",
	"genSelfSignedCert":        "key and certificate generation takes seconds of CPU and has no use in a build file",
	"genSelfSignedCertWithKey": "certificate generation has no use in a build file",
	"genSignedCert":            "key and certificate generation takes seconds of CPU and has no use in a build file",
	"genSignedCertWithKey":     "certificate generation has no use in a build file",
	"bcrypt":                   "bcrypt is slow by design and has no use in a build file",
	"htpasswd":                 "it runs bcrypt, slow by design, and has no use in a build file",
	"encryptAES":               "encryption has no use in a build file: a secret comes from kiln secret",
	"decryptAES":               "decryption has no use in a build file: a secret comes from kiln secret",
	"randBytes":                "random bytes have no use in a build file: randAlphaNum or uuidv4 name things",
}

// sprigMap is Sprig's text functions less Dropped, as Sprig returns them; Execute puts the bounded versions
// and the checks around them.
var sprigMap = func() template.FuncMap {
	fm := maps.Clone(sprigFuncs)
	for name := range Dropped {
		delete(fm, name)
	}
	return fm
}()

// Sprig returns Sprig's text functions less Dropped, for Parse. The caller may change the map it gets.
func Sprig() template.FuncMap {
	return maps.Clone(sprigMap)
}
