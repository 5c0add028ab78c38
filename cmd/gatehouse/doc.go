// Command gatehouse is the gatehouse server and its command-line client.
//
// "gatehouse serve" runs the Envoy ext_authz server and the admin gRPC API
// over one bbolt file. Every other subcommand is a client of the admin API
// (gatehouse.admin.v1.AdminService): it never opens the bbolt file, which the
// server holds locked, so the CLI works the same against a local server or a
// remote one.
//
// Connection: --server (or $GATEHOUSE_SERVER, default 127.0.0.1:9002). Each
// call carries "authorization: Bearer <admin key>", the key coming from
// --admin-key-file, else $GATEHOUSE_ADMIN_KEY, else ./data/admin.key (the
// file "gatehouse serve --data-dir ./data" writes on first start). Plaintext
// is allowed only to a loopback address; anything else needs --tls, so an
// admin key never crosses a network in clear.
//
// Layout: one file per verb group (token.go, app.go, policy.go, ...), each
// declaring its commands as data (path, synopsis, help, flags, action); the
// table in commands.go is what main dispatches on and what "gatehouse help"
// documents, so help and behaviour cannot drift apart. run is the testable
// entry point: the tests drive it against a fake AdminService on a loopback
// listener.
//
// Exit status: 0 on success, 1 when the command failed (server error,
// unreachable server, rejected key), 2 for a usage error. Errors are one line
// on stderr, "gatehouse: <message>".
package main
