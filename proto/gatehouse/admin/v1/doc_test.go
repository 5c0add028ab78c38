package adminv1_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

// update rewrites docs/api.md instead of comparing with it:
//
//	go test ./proto/gatehouse/admin/v1 -run TestAPIReference -update
var update = flag.Bool("update", false, "rewrite docs/api.md from admin.proto instead of comparing")

const (
	// protoRoot is the buf module root (buf.yaml: modules: path: proto),
	// relative to this package; protoFile is the file's import path in it.
	protoRoot = "../../.."
	protoFile = "gatehouse/admin/v1/admin.proto"
)

// apiReference is docs/api.md, relative to this package.
var apiReference = filepath.Join("..", "..", "..", "..", "docs", "api.md")

// TestAPIReference keeps docs/api.md equal to what admin.proto says: the
// comments in the .proto are the documentation, and the file is generated
// from them, so a new RPC, field or comment without regenerating fails here.
func TestAPIReference(t *testing.T) {
	fd := compileWithComments(t)
	got := renderAPIReference(fd)
	if *update {
		if err := os.WriteFile(apiReference, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", apiReference)
		return
	}
	want, err := os.ReadFile(apiReference)
	if err != nil {
		t.Fatalf("%v\nGenerate it with: go test ./proto/gatehouse/admin/v1 -run TestAPIReference -update (or make docs)", err)
	}
	if !bytes.Equal(got, want) {
		n := firstDiffLine(want, got)
		t.Errorf("docs/api.md is stale: it differs from admin.proto at line %d:\n  file:  %q\n  proto: %q\n"+
			"Regenerate it with: go test ./proto/gatehouse/admin/v1 -run TestAPIReference -update (or make docs), and commit it.",
			n, lineAt(want, n), lineAt(got, n))
	}
}

// TestAPIReferenceSource checks that the .proto the reference is rendered
// from is the one the Go code was generated from (same services, methods,
// messages and fields), and that the generator reads comments at all: a
// reference rendered without source info would silently lose every
// description.
func TestAPIReferenceSource(t *testing.T) {
	fd := compileWithComments(t)
	if got, want := shape(fd), shape(adminv1.File_gatehouse_admin_v1_admin_proto); !slices.Equal(got, want) {
		t.Errorf("admin.proto and the generated admin.pb.go disagree (run make proto):\nproto: %v\nGo:    %v", got, want)
	}
	svc := fd.Services().ByName("AdminService")
	if svc == nil {
		t.Fatal("no AdminService in admin.proto")
	}
	if c := comment(fd, svc); !strings.Contains(c, "admin listener") {
		t.Errorf("AdminService's comment was not read (got %q): is SourceInfoMode set?", c)
	}
	doc := string(renderAPIReference(fd))
	for _, want := range []string{
		"### rpc CreateServiceToken",
		"`rpc Backup(BackupRequest) returns (stream BackupChunk)`",
		"| `client_secret` | `string` | client_secret is set only in the responses of CreateServiceToken and RotateServiceToken. |",
		"| `name` | optional `string` |",
		"[ServiceToken](#message-servicetoken)",
		"`google.protobuf.Timestamp`",
		"Oneof `selector`: set exactly one of its fields.",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("the rendered reference lacks %q", want)
		}
	}
}

// compileWithComments parses and links admin.proto with protocompile,
// keeping the comments (SourceInfoStandard: leading, trailing and detached
// comments of every declaration, as protoc would).
func compileWithComments(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			ImportPaths: []string{protoRoot},
		}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := c.Compile(context.Background(), protoFile)
	if err != nil {
		t.Fatalf("compiling %s: %v", protoFile, err)
	}
	return files[0]
}

// shape lists every service, method, message and field of fd by full name,
// for comparing two descriptors of the same file.
func shape(fd protoreflect.FileDescriptor) []string {
	var out []string
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		out = append(out, string(s.FullName()))
		for j := range s.Methods().Len() {
			m := s.Methods().Get(j)
			out = append(out, fmt.Sprintf("%s(%s)%s", m.FullName(), m.Input().FullName(), m.Output().FullName()))
		}
	}
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			out = append(out, string(m.FullName()))
			for j := range m.Fields().Len() {
				f := m.Fields().Get(j)
				out = append(out, fmt.Sprintf("%s=%d %s %s", f.FullName(), f.Number(), f.Cardinality(), f.Kind()))
			}
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	return out
}

// renderAPIReference renders docs/api.md from a descriptor with source info.
func renderAPIReference(fd protoreflect.FileDescriptor) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Admin API reference

<!-- Generated from proto/%s by TestAPIReference (proto/gatehouse/admin/v1/doc_test.go).
     Do not edit: change the comments in the .proto, then run
     go test ./proto/gatehouse/admin/v1 -run TestAPIReference -update   (or: make docs) -->

Package `+"`%s`"+`, defined in [proto/%s](../proto/%s). The admin listener
(`+"`gatehouse serve --admin-addr`"+`, default `+"`127.0.0.1:9002`"+`) serves it, with gRPC health and server
reflection; the `+"`gatehouse`"+` CLI ([cli.md](cli.md)) is a client of it.

`, protoFile, fd.Package(), protoFile, protoFile)

	// The file's leading comment (before "syntax") is the API's overview.
	if c := syntaxComment(fd); c != "" {
		b.WriteString(paragraphs(c))
		b.WriteString("\n")
	}

	for i := range fd.Services().Len() {
		svc := fd.Services().Get(i)
		fmt.Fprintf(&b, "## Service %s\n\n", svc.Name())
		if c := comment(fd, svc); c != "" {
			b.WriteString(paragraphs(c))
			b.WriteString("\n")
		}
		b.WriteString("| RPC | request | response |\n|---|---|---|\n")
		for j := range svc.Methods().Len() {
			m := svc.Methods().Get(j)
			fmt.Fprintf(&b, "| [%s](#%s) | %s | %s |\n", m.Name(), anchor("rpc", m.Name()),
				messageLink(fd, m.Input()), streamPrefix(m.IsStreamingServer())+messageLink(fd, m.Output()))
		}
		b.WriteString("\n")
		for j := range svc.Methods().Len() {
			m := svc.Methods().Get(j)
			fmt.Fprintf(&b, "### rpc %s\n\n`rpc %s(%s%s) returns (%s%s)`\n\n", m.Name(), m.Name(),
				streamPrefix(m.IsStreamingClient()), typeName(fd, m.Input()),
				streamPrefix(m.IsStreamingServer()), typeName(fd, m.Output()))
			if c := comment(fd, m); c != "" {
				b.WriteString(paragraphs(c))
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "Request: %s. Response: %s%s.\n\n", messageLink(fd, m.Input()),
				streamPrefix(m.IsStreamingServer()), messageLink(fd, m.Output()))
		}
	}

	b.WriteString("## Messages\n\n")
	var walk func(protoreflect.MessageDescriptors)
	walk = func(ms protoreflect.MessageDescriptors) {
		for i := range ms.Len() {
			m := ms.Get(i)
			writeMessage(&b, fd, m)
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

func writeMessage(b *bytes.Buffer, fd protoreflect.FileDescriptor, m protoreflect.MessageDescriptor) {
	fmt.Fprintf(b, "### message %s\n\n", localName(fd, m))
	if c := comment(fd, m); c != "" {
		b.WriteString(paragraphs(c))
		b.WriteString("\n")
	}
	if m.Fields().Len() == 0 {
		b.WriteString("No fields.\n\n")
		return
	}
	b.WriteString("| field | type | description |\n|---|---|---|\n")
	for i := range m.Fields().Len() {
		f := m.Fields().Get(i)
		desc := oneLine(comment(fd, f))
		if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
			note := fmt.Sprintf("Oneof `%s`: set exactly one of its fields.", o.Name())
			if desc == "" {
				desc = note
			} else {
				desc = note + " " + desc
			}
		}
		if desc != "" {
			desc = " " + desc
		}
		fmt.Fprintf(b, "| `%s` | %s |%s |\n", f.Name(), fieldType(fd, f), desc)
	}
	b.WriteString("\n")
}

// fieldType renders a field's type: "repeated", proto3 "optional", and a
// link for messages defined in this file.
func fieldType(fd protoreflect.FileDescriptor, f protoreflect.FieldDescriptor) string {
	var t string
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		t = messageLink(fd, f.Message())
	case protoreflect.EnumKind:
		t = "`" + string(f.Enum().FullName()) + "`"
	default:
		t = "`" + f.Kind().String() + "`"
	}
	switch {
	case f.IsList():
		return "repeated " + t
	case f.IsMap():
		return "map " + t
	case f.HasPresence() && f.ContainingOneof() != nil && f.ContainingOneof().IsSynthetic():
		return "optional " + t
	}
	return t
}

// messageLink links a message of this file to its section, and names any
// other (google.protobuf.Timestamp) in full.
func messageLink(fd protoreflect.FileDescriptor, m protoreflect.MessageDescriptor) string {
	if m.ParentFile().Path() != fd.Path() {
		return "`" + string(m.FullName()) + "`"
	}
	return fmt.Sprintf("[%s](#%s)", localName(fd, m), anchor("message", protoreflect.Name(localName(fd, m))))
}

func typeName(fd protoreflect.FileDescriptor, m protoreflect.MessageDescriptor) string {
	if m.ParentFile().Path() != fd.Path() {
		return string(m.FullName())
	}
	return localName(fd, m)
}

// localName is a message's name relative to the package ("Outer.Inner").
func localName(fd protoreflect.FileDescriptor, m protoreflect.MessageDescriptor) string {
	return strings.TrimPrefix(string(m.FullName()), string(fd.Package())+".")
}

func streamPrefix(stream bool) string {
	if stream {
		return "stream "
	}
	return ""
}

// anchor is the fragment GitHub derives from the heading "### kind name".
func anchor(kind string, name protoreflect.Name) string {
	return kind + "-" + strings.ToLower(strings.ReplaceAll(string(name), ".", ""))
}

// comment is the leading comment of d (the one protoc attaches to it), with
// the comment markers' leading space removed from each line.
func comment(fd protoreflect.FileDescriptor, d protoreflect.Descriptor) string {
	return cleanComment(fd.SourceLocations().ByDescriptor(d).LeadingComments)
}

// syntaxComment is the comment above the "syntax" statement: the file's
// own description.
func syntaxComment(fd protoreflect.FileDescriptor) string {
	const fileSyntax = 12 // google.protobuf.FileDescriptorProto.syntax
	loc := fd.SourceLocations().ByPath(protoreflect.SourcePath{fileSyntax})
	return cleanComment(loc.LeadingComments)
}

func cleanComment(c string) string {
	lines := strings.Split(strings.TrimRight(c, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(strings.TrimRight(l, " \t"), " ")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// paragraphs keeps a comment's paragraphs and joins the lines within each,
// so Markdown reflows them.
func paragraphs(c string) string {
	var out []string
	for _, p := range strings.Split(c, "\n\n") {
		out = append(out, oneLine(p))
	}
	return strings.Join(out, "\n\n") + "\n"
}

// oneLine joins a comment into one table-safe line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// firstDiffLine is the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(la), len(lb)) {
		if i >= len(la) || i >= len(lb) || la[i] != lb[i] {
			return i + 1
		}
	}
	return 0
}

func lineAt(doc []byte, n int) string {
	lines := strings.Split(string(doc), "\n")
	if n < 1 || n > len(lines) {
		return "(end of file)"
	}
	return lines[n-1]
}
