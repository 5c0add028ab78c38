package main

import (
	"context"
	"flag"
	"fmt"

	adminv1 "github.com/gatehouse-dev/gatehouse/proto/gatehouse/admin/v1"
)

func access(readOnly bool) string {
	if readOnly {
		return "read-only"
	}
	return "read-write"
}

func (s *session) printAdminKey(k *adminv1.AdminKey) error {
	if s.out.json {
		return s.out.object(k)
	}
	return s.out.detail([]field{
		{"id", k.GetId()},
		{"name", k.GetName()},
		{"access", access(k.GetReadOnly())},
		{"created", s.out.exact(k.GetCreatedAt(), "-")},
		{"revoked", s.out.exact(k.GetRevokedAt(), "no")},
	})
}

func adminKeyCommands() []*command {
	return []*command{
		{
			path: "admin-key create", args: "NAME", minArgs: 1, maxArgs: 1,
			summary: "create an admin key and print it, once",
			help: `Creates an admin key for the admin API. The key is printed once; the server
keeps only a digest of it. Give each person or automation its own key: the
audit log records the key's name with every change. A --read-only key can
list, get and check, but not change anything.`,
			example: `gatehouse admin-key create alice
gatehouse admin-key create dashboards --read-only -o json | jq -r .key > dashboards.key`,
			define: func(fs *flag.FlagSet) action {
				readOnly := fs.Bool("read-only", false, "the key can read but not change anything")
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					k, err := client.CreateAdminKey(ctx, &adminv1.CreateAdminKeyRequest{Name: args[0], ReadOnly: *readOnly})
					if err != nil {
						return err
					}
					if s.out.json {
						return s.out.object(k)
					}
					key := k.GetKey()
					k.Key = ""
					if err := s.printAdminKey(k); err != nil {
						return err
					}
					_, err = fmt.Fprintf(s.stdout, "\nAdmin key: %s\nThis admin key will not be shown again. Store it now (for example in a file for --admin-key-file).\n", key)
					return err
				}
			},
		},
		{
			path: "admin-key list", maxArgs: 0,
			summary: "list admin keys (never the keys themselves)",
			example: `gatehouse admin-key list`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					resp, err := client.ListAdminKeys(ctx, &adminv1.ListAdminKeysRequest{})
					if err != nil {
						return err
					}
					keys := resp.GetAdminKeys()
					if s.out.json {
						return array(s.out, keys)
					}
					rows := make([][]string, len(keys))
					for i, k := range keys {
						rows[i] = []string{k.GetId(), k.GetName(), access(k.GetReadOnly()),
							s.out.ago(k.GetCreatedAt(), "-"), s.out.ago(k.GetRevokedAt(), "-")}
					}
					return s.out.table([]string{"ID", "NAME", "ACCESS", "CREATED", "REVOKED"}, rows)
				}
			},
		},
		{
			path: "admin-key revoke", args: "KEY", minArgs: 1, maxArgs: 1,
			summary: "revoke an admin key at once",
			help:    `Revokes an admin key, by id or name: calls made with it fail from then on.`,
			example: `gatehouse admin-key revoke alice`,
			define: func(fs *flag.FlagSet) action {
				return func(ctx context.Context, s *session, args []string) error {
					client, err := s.admin()
					if err != nil {
						return err
					}
					k, err := client.RevokeAdminKey(ctx, &adminv1.RevokeAdminKeyRequest{Id: args[0]})
					if err != nil {
						return err
					}
					return s.printAdminKey(k)
				}
			},
		},
	}
}
