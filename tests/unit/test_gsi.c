/* Tests for the shared GSI routing table (src/vmm/x86/gsi.c), with recorded KVM calls. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/x86/gsi.h"

struct rec {
	int commits;
	int fail_with;
	uint32_t nr;
	struct kvm_irq_routing_entry last[64];
};

static int rec_routing(void *ctx, const struct kvm_irq_routing *t)
{
	struct rec *r = ctx;

	r->commits++;
	r->nr = t->nr;
	memcpy(r->last, t->entries, (t->nr < 64 ? t->nr : 64) * sizeof(t->entries[0]));
	return r->fail_with;
}

static const struct kvm_irq_ops rec_ops = {.set_gsi_routing = rec_routing};

static const struct kvm_irq_routing_entry *find(const struct rec *r, uint32_t gsi, uint32_t type,
						uint32_t chip)
{
	for (uint32_t i = 0; i < r->nr && i < 64; i++) {
		const struct kvm_irq_routing_entry *e = &r->last[i];

		if (e->gsi == gsi && e->type == type &&
		    (type != KVM_IRQ_ROUTING_IRQCHIP || e->u.irqchip.irqchip == chip))
			return e;
	}
	return NULL;
}

/* KVM_SET_GSI_ROUTING replaces the table: KVM's defaults must be re-sent. */
Test(gsi, table_keeps_irqchip_defaults)
{
	struct gsi_router g;
	struct rec r = {0};
	uint32_t gsi;

	gsi_router_init(&g, &rec_ops, &r);
	cr_assert_eq(gsi_alloc_msi(&g, &gsi), 0);
	cr_assert_eq(gsi, GSI_IRQCHIP_PINS, "MSI GSIs start after the IOAPIC's 24 pins");
	cr_assert_eq(r.commits, 0, "allocation alone sends nothing");
	cr_assert_eq(gsi_route_msi(&g, gsi, 0xfee00000, 0x4041), 0);
	cr_assert_eq(r.commits, 1);
	cr_assert_eq(r.nr, 24 + 16 + 1);
	for (uint32_t i = 0; i < 24; i++) {
		const struct kvm_irq_routing_entry *e =
		    find(&r, i, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_IOAPIC);

		cr_assert_not_null(e, "GSI %u -> IOAPIC", i);
		cr_assert_eq(e->u.irqchip.pin, i);
	}
	for (uint32_t i = 0; i < 16; i++) {
		uint32_t chip = i < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		const struct kvm_irq_routing_entry *e = find(&r, i, KVM_IRQ_ROUTING_IRQCHIP, chip);

		cr_assert_not_null(e, "GSI %u -> PIC", i);
		cr_assert_eq(e->u.irqchip.pin, i % 8);
	}
	cr_assert_null(find(&r, 16, KVM_IRQ_ROUTING_IRQCHIP, KVM_IRQCHIP_PIC_MASTER));
	const struct kvm_irq_routing_entry *m = find(&r, gsi, KVM_IRQ_ROUTING_MSI, 0);

	cr_assert_not_null(m);
	cr_assert_eq(m->u.msi.address_lo, 0xfee00000);
	cr_assert_eq(m->u.msi.address_hi, 0);
	cr_assert_eq(m->u.msi.data, 0x4041);
	gsi_router_destroy(&g);
}

Test(gsi, unchanged_route_is_not_resent_and_free_drops_it)
{
	struct gsi_router g;
	struct rec r = {0};
	uint32_t a, b;

	gsi_router_init(&g, &rec_ops, &r);
	cr_assert_eq(gsi_alloc_msi(&g, &a), 0);
	cr_assert_eq(gsi_alloc_msi(&g, &b), 0);
	cr_assert_neq(a, b);
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee01000, 0x30), 0);
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee01000, 0x30), 0);
	cr_assert_eq(r.commits, 1);
	cr_assert_eq(gsi_route_msi(&g, b, 0x1fee02000, 0x31), 0);
	cr_assert_eq(r.commits, 2);
	cr_assert_eq(r.nr, 42);
	cr_assert_eq(find(&r, b, KVM_IRQ_ROUTING_MSI, 0)->u.msi.address_hi, 1);
	gsi_free_msi(&g, a);
	cr_assert_eq(r.commits, 3);
	cr_assert_eq(r.nr, 41);
	cr_assert_null(find(&r, a, KVM_IRQ_ROUTING_MSI, 0));
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee00000, 0), -EINVAL, "freed");
	cr_assert_eq(gsi_route_msi(&g, 5, 0xfee00000, 0), -EINVAL, "an IOAPIC pin");
	cr_assert_eq(gsi_route_msi(&g, 1u << 30, 0xfee00000, 0), -EINVAL);
	/* The freed GSI is handed out again. */
	cr_assert_eq(gsi_alloc_msi(&g, &b), 0);
	cr_assert_eq(b, a);
	gsi_router_destroy(&g);
}

Test(gsi, failed_commit_is_retried)
{
	struct gsi_router g;
	struct rec r = {.fail_with = -EINVAL};
	uint32_t a;

	gsi_router_init(&g, &rec_ops, &r);
	cr_assert_eq(gsi_alloc_msi(&g, &a), 0);
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee00000, 0x22), -EINVAL);
	r.fail_with = 0;
	/* Same route again: the router must not think KVM already has it. */
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee00000, 0x22), 0);
	cr_assert_eq(r.commits, 2);
	gsi_router_destroy(&g);
}

Test(gsi, runs_out)
{
	struct gsi_router *g = malloc(sizeof(*g));
	struct rec r = {0};
	uint32_t gsi = 0;

	gsi_router_init(g, &rec_ops, &r);
	for (int i = 0; i < GSI_MSI_MAX; i++)
		cr_assert_eq(gsi_alloc_msi(g, &gsi), 0);
	cr_assert_eq(gsi, GSI_IRQCHIP_PINS + GSI_MSI_MAX - 1);
	cr_assert_eq(gsi_alloc_msi(g, &gsi), -ENOSPC);
	gsi_router_destroy(g);
	free(g);
}

Test(gsi, build_table_checks_room)
{
	struct gsi_router g;
	struct rec r = {0};
	struct kvm_irq_routing *t = calloc(1, sizeof(*t) + 64 * sizeof(t->entries[0]));
	uint32_t a;

	gsi_router_init(&g, &rec_ops, &r);
	cr_assert_eq(gsi_build_table(&g, t, 64), 40);
	cr_assert_eq(gsi_alloc_msi(&g, &a), 0);
	cr_assert_eq(gsi_route_msi(&g, a, 0xfee00000, 1), 0);
	cr_assert_eq(gsi_build_table(&g, t, 40), -ENOSPC);
	cr_assert_eq(gsi_build_table(&g, t, 41), 41);
	cr_assert_eq(t->nr, 41);
	free(t);
	gsi_router_destroy(&g);
}
