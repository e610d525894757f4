"""factory-boy factories for the messaging models."""

import factory
from django.contrib.auth.models import User

from messaging.models import Church, Contact, ContactGroup, Message, PhoneLink, RecurringMessage, StaffMember


class ChurchFactory(factory.django.DjangoModelFactory[Church]):
    class Meta:
        model = Church

    name = factory.Sequence(lambda n: f"Church {n}")
    time_zone = "America/New_York"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    password = factory.django.Password("a-staff-password")


class StaffMemberFactory(factory.django.DjangoModelFactory[StaffMember]):
    class Meta:
        model = StaffMember

    user = factory.SubFactory(UserFactory)
    church = factory.SubFactory(ChurchFactory)


class ContactGroupFactory(factory.django.DjangoModelFactory[ContactGroup]):
    class Meta:
        model = ContactGroup

    church = factory.SubFactory(ChurchFactory)
    name = factory.Sequence(lambda n: f"group {n}")


class ContactFactory(factory.django.DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    church = factory.SubFactory(ChurchFactory)
    # +1 212 2xx xxxx: valid US numbers, unique within a test run
    phone = factory.Sequence(lambda n: f"+1212{2000000 + n:07d}")
    name = factory.Faker("first_name")


class RecurringMessageFactory(factory.django.DjangoModelFactory[RecurringMessage]):
    class Meta:
        model = RecurringMessage

    church = factory.SubFactory(ChurchFactory)
    body = "Service starts at 10. See you there!"
    cron = "0 9 * * *"


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    class Meta:
        model = Message

    church = factory.SubFactory(ChurchFactory)
    contact = factory.SubFactory(ContactFactory, church=factory.SelfAttribute("..church"))
    direction = Message.Direction.OUTBOUND
    body = factory.Faker("sentence")
    status = Message.Status.QUEUED


class PhoneLinkFactory(factory.django.DjangoModelFactory[PhoneLink]):
    class Meta:
        model = PhoneLink

    church = factory.SubFactory(ChurchFactory)
    phone = factory.Sequence(lambda n: f"+1646{2000000 + n:07d}")
    state = PhoneLink.State.LINKED
