"""Admin pages: read-mostly views of each church's data; foreign keys as raw ids (tables grow large)."""

from django.contrib import admin

from messaging.models import (
    ApiToken,
    Church,
    Contact,
    ContactGroup,
    DevelopmentSms,
    IdempotentRequest,
    Message,
    PhoneLink,
    RecurringMessage,
    StaffMember,
)


@admin.register(Church)
class ChurchAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "time_zone", "created_at"]
    search_fields = ["name"]


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "church"]
    list_select_related = ["user", "church"]
    raw_id_fields = ["user", "church"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "created_at", "expires_at"]
    list_select_related = ["user"]
    readonly_fields = ["user", "key_hash", "created_at", "expires_at"]


@admin.register(ContactGroup)
class ContactGroupAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "church"]
    list_select_related = ["church"]
    raw_id_fields = ["church"]


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["id", "phone", "name", "opted_out", "church"]
    list_filter = ["opted_out"]
    list_select_related = ["church"]
    search_fields = ["phone", "name"]
    raw_id_fields = ["church"]
    filter_horizontal = ["groups"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "church", "contact", "direction", "status", "created_at"]
    list_filter = ["direction", "status"]
    list_select_related = ["church", "contact"]
    search_fields = ["provider_message_id"]
    raw_id_fields = ["church", "contact", "recurring_message"]
    show_full_result_count = False  # COUNT(*) over millions of rows on every page


@admin.register(RecurringMessage)
class RecurringMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "church", "cron", "group", "active", "next_run_at"]
    list_filter = ["active"]
    list_select_related = ["church", "group"]
    raw_id_fields = ["church", "group"]


@admin.register(IdempotentRequest)
class IdempotentRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "church", "key", "created_at"]
    raw_id_fields = ["church"]


@admin.register(PhoneLink)
class PhoneLinkAdmin(admin.ModelAdmin):
    list_display = ["id", "phone", "church", "state", "attempts", "last_attempt_at"]
    list_filter = ["state"]
    raw_id_fields = ["church"]


@admin.register(DevelopmentSms)
class DevelopmentSmsAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "to",
        "from_number",
        "provider_message_id",
        "idempotency_key",
        "duplicate",
        "created_at",
    ]
    list_filter = ["duplicate"]
    search_fields = ["to", "provider_message_id", "idempotency_key"]
