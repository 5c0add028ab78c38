package main

import (
	"context"
	"flag"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func (s *session) printKeys(keys []*adminv1.SigningKey) error {
	if s.out.json {
		return array(s.out, keys)
	}
	now := s.now()
	rows := make([][]string, len(keys))
	for i, k := range keys {
		state := "retired"
		switch {
		case k.GetActive():
			state = "active"
		case k.GetActiveFrom() != nil && now.Before(k.GetActiveFrom().AsTime()) &&
			(k.GetRetiredAt() == nil || k.GetActiveFrom().AsTime().Before(k.GetRetiredAt().AsTime())):
			state = "pending"
		}
		signsFrom := k.GetActiveFrom()
		if signsFrom == nil {
			signsFrom = k.GetCreatedAt()
		}
		rows[i] = []string{k.GetKid(), k.GetAlg(), state, s.out.ago(k.GetCreatedAt(), "-"), s.out.ago(signsFrom, "-"),
			s.out.ago(k.GetRetiredAt(), "-"), s.out.ago(k.GetRemoveAfter(), "-")}
	}
	return s.out.table([]string{"KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "RETIRES", "LEAVES JWKS"}, rows)
}

func keysCommands() []*command {
	return []*command{
		{
			path: "keys list", maxArgs: 0,
			summary: "list the session-JWT signing keys (public parts only)",
			help: `Lists the signing keys published in the JWKS: the active one, which signs new
session JWTs; after a rotation, the pending one, published and signing from
"signs from"; and the retired ones, kept until every JWT they signed has
expired ("leaves JWKS").`,
			example: `gatehouse keys list`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.ListSigningKeys(ctx, &adminv1.ListSigningKeysRequest{})
					if err != nil {
						return err
					}
					return s.printKeys(resp.GetKeys())
				}
			},
		},
		{
			path: "keys rotate", maxArgs: 0,
			summary: "add a new signing key, signing after ten minutes",
			help: `Generates a new signing key and publishes it in the JWKS at once; it starts
signing ten minutes later, when the current key retires (publish before
sign: origins and Envoy jwt_authn filters that cache the JWKS for up to five
minutes have fetched the new key before they see a JWT signed with it). The
retired key stays in the JWKS until the JWTs it signed have expired. Prints
the keys afterwards.

--now makes the new key sign at once, for a key that must stop signing now
(a leaked one): verifiers whose cached JWKS lacks the new key refuse its
JWTs until they refetch.`,
			example: `gatehouse keys rotate
gatehouse keys rotate --alg ES256
gatehouse keys rotate --now`,
			define: func(fs *flag.FlagSet) action {
				alg := fs.String("alg", "", "the new key's `algorithm`: RS256, ES256 or EdDSA (default RS256)")
				now := fs.Bool("now", false, "sign with the new key at once, without the ten minutes of pre-publication")
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.RotateSigningKeys(ctx, &adminv1.RotateSigningKeysRequest{Alg: *alg, Immediate: *now})
					if err != nil {
						return err
					}
					return s.printKeys(resp.GetKeys())
				}
			},
		},
	}
}
