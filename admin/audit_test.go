package admin_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gatehouse-dev/gatehouse/admin"
	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
	"github.com/gatehouse-dev/gatehouse/store"
)

func TestListAuditEvents(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		e.clk.Add(time.Minute)
		e.createToken(fmt.Sprintf("t%d", i), "")
	}
	_, err := e.client.CreateServiceToken(e.ctx(), &adminv1.CreateServiceTokenRequest{Name: "t0"})
	wantStatus(t, err, codes.AlreadyExists)

	all, err := e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The bootstrap key's creation, five creates, one failure.
	if len(all.Events) != 7 {
		t.Fatalf("%d events: %v", len(all.Events), all.Events)
	}
	if ev := all.Events[0]; ev.Method != "EnsureAdminKey" || ev.AdminKey != "gatehouse" {
		t.Fatalf("first event = %v", ev)
	}
	for i, ev := range all.Events[1:6] {
		want := fmt.Sprintf("(t%d)", i)
		if ev.Method != "CreateServiceToken" || ev.Outcome != "ok" || ev.AdminKey != "bootstrap" || !strings.HasSuffix(ev.Object, want) ||
			!ev.Time.AsTime().Equal(t0.Add(time.Duration(i+1)*time.Minute)) {
			t.Fatalf("event %d = %v", i+1, ev)
		}
	}
	if ev := all.Events[6]; ev.Outcome != "AlreadyExists" || ev.Object != "t0" || !strings.Contains(ev.Message, "name: ") {
		t.Fatalf("failure event = %v", ev)
	}

	// limit keeps the most recent events, oldest first.
	last2, err := e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{Limit: 2})
	if err != nil || len(last2.Events) != 2 || !proto.Equal(last2.Events[0], all.Events[5]) || !proto.Equal(last2.Events[1], all.Events[6]) {
		t.Fatalf("limit 2 = %v, %v", last2, err)
	}
	since, err := e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{Since: timestamppb.New(t0.Add(4 * time.Minute))})
	if err != nil || len(since.Events) != 3 || !proto.Equal(since.Events[0], all.Events[4]) {
		t.Fatalf("since t0+4m = %v, %v", since, err)
	}
	_, err = e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{Limit: -1})
	wantStatus(t, err, codes.InvalidArgument, "limit: ")
	_, err = e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{Since: &timestamppb.Timestamp{Nanos: -1}})
	wantStatus(t, err, codes.InvalidArgument, "since: ")
}

// TestSecretsStaySecret creates and rotates secrets, then collects every
// later response, the audit log and the server log: no secret may appear in
// any of them.
func TestSecretsStaySecret(t *testing.T) {
	e := newEnv(t)
	tok := e.createToken("svc", "")
	rot, err := e.client.RotateServiceToken(e.ctx(), &adminv1.RotateServiceTokenRequest{Id: tok.Id, Grace: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := e.client.CreateAdminKey(e.ctx(), &adminv1.CreateAdminKeyRequest{Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	const cfSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	imp, err := e.client.ImportServiceToken(e.ctx(), &adminv1.ImportServiceTokenRequest{
		Name: "imported", ClientId: "0123456789abcdef0123456789abcdef.access", ClientSecret: cfSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"created secret": tok.ClientSecret, "rotated secret": rot.ClientSecret,
		"admin key": ak.Key, "bootstrap key": e.key, "imported secret": cfSecret,
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", what)
		}
	}

	// Mistakes that put a secret where it does not belong.
	_, _ = e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: tok.ClientSecret})
	_, _ = e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: ak.Key})
	_, _ = e.client.CreateServiceToken(e.ctx(), &adminv1.CreateServiceTokenRequest{Name: rot.ClientSecret, Duration: "x"})
	_, _ = e.client.UpdateApplication(e.ctx(), &adminv1.UpdateApplicationRequest{Id: cfSecret, DryRun: ptr(true)})
	_, _ = e.client.ImportServiceToken(e.ctx(), &adminv1.ImportServiceTokenRequest{
		Name: "again", ClientId: "0123456789abcdef0123456789abcdef.access", ClientSecret: cfSecret,
	})
	app := e.createApp("app", "app.example.com")
	_, _ = e.client.CreatePolicy(e.ctx(), &adminv1.CreatePolicyRequest{Application: app.Id, Name: "p", Decision: "allow",
		Include: []*adminv1.Rule{tokenRule(tok.ClientSecret)}})

	var seen []string
	add := func(m proto.Message, err error) {
		t.Helper()
		if err != nil {
			seen = append(seen, err.Error())
			return
		}
		seen = append(seen, protojson.Format(m))
	}
	add(e.client.ListServiceTokens(e.ctx(), &adminv1.ListServiceTokensRequest{}))
	add(e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: tok.Id}))
	add(e.client.GetServiceToken(e.ctx(), &adminv1.GetServiceTokenRequest{Id: imp.Id}))
	add(e.client.UpdateServiceToken(e.ctx(), &adminv1.UpdateServiceTokenRequest{Id: tok.Id, Name: ptr("svc2")}))
	add(e.client.RefreshServiceToken(e.ctx(), &adminv1.RefreshServiceTokenRequest{Id: tok.Id}))
	add(e.client.SetServiceTokenEnabled(e.ctx(), &adminv1.SetServiceTokenEnabledRequest{Id: tok.Id, Enabled: true}))
	add(e.client.ListAdminKeys(e.ctx(), &adminv1.ListAdminKeysRequest{}))
	add(e.client.RevokeAdminKey(e.ctx(), &adminv1.RevokeAdminKeyRequest{Id: "ops"}))
	add(e.client.ListAuditEvents(e.ctx(), &adminv1.ListAuditEventsRequest{}))
	add(e.client.DeleteServiceToken(e.ctx(), &adminv1.DeleteServiceTokenRequest{Id: tok.Id}))
	for _, ev := range e.audit() {
		seen = append(seen, fmt.Sprintf("%+v", *ev))
	}
	seen = append(seen, e.logs.String())
	if !strings.Contains(e.logs.String(), "CreateServiceToken") {
		t.Fatal("the log capture saw nothing: the test would prove nothing")
	}
	for what, s := range secrets {
		for _, out := range seen {
			if strings.Contains(out, s) {
				t.Errorf("the %s appears in %q", what, out)
			}
		}
	}
}

// TestInternalErrors closes the store under the server: the client gets a
// generic Internal error, the log gets the cause.
func TestInternalErrors(t *testing.T) {
	e := newEnv(t)
	if err := e.db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := e.client.ListServiceTokens(e.ctx(), &adminv1.ListServiceTokensRequest{})
	wantStatus(t, err, codes.Internal, "internal error")
	if strings.Contains(err.Error(), "database not open") {
		t.Fatalf("the cause leaked to the client: %v", err)
	}
	if !strings.Contains(e.logs.String(), "database not open") {
		t.Fatalf("the cause is not logged: %s", e.logs.String())
	}
}

// The store's DB is what the server runs on.
var _ admin.Store = (*store.DB)(nil)

// TestLongInputIsClipped sends a 100 KB reference: the message and the
// audit event hold a bounded part of it.
func TestLongInputIsClipped(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 50000)
	_, err := e.client.DeleteApplication(e.ctx(), &adminv1.DeleteApplicationRequest{Id: long})
	wantStatus(t, err, codes.NotFound, "…")
	if n := len(err.Error()); n > 400 {
		t.Fatalf("message is %d bytes", n)
	}
	ev := e.lastAudit()
	if len(ev.Object) > 300 || len(ev.Message) > 400 || !strings.HasSuffix(ev.Object, "é…") {
		t.Fatalf("audit object %d bytes, message %d bytes: %q", len(ev.Object), len(ev.Message), ev.Object[len(ev.Object)-10:])
	}
}
