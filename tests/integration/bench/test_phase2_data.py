"""The Phase 2 seeding at a tiny scale on real PostgreSQL: the totals, skewed sizes, ids in
time order, and the targets the measurement reads back."""

import pytest
from django.db.models import F

from bench import phase2_data
from messaging.models import Church, Contact, Message

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def test_seeding_at_a_small_scale_writes_the_shape_and_the_targets() -> None:
    # when the data is seeded at 1/2,000 of the full size (5 churches, 500 contacts)
    seeded = phase2_data.seed(scale=0.0005, progress=lambda _line: None)
    # then the totals are there, once
    churches = Church.objects.filter(name__startswith=phase2_data.NAME)
    assert (seeded.churches, seeded.contacts, seeded.messages) == (5, 500, 2_500)
    assert churches.count() == 5
    assert Contact.objects.filter(church__in=churches).count() == 500
    messages = Message.objects.filter(church__in=churches)
    assert messages.count() == 2_500
    assert phase2_data.seed(scale=0.0005, progress=lambda _line: None).churches == 0
    # and every message belongs to a contact of its own church
    assert not messages.exclude(contact__church_id=F("church_id")).exists()
    # and ids rise with time
    times = [sent for sent in messages.order_by("id").values_list("sent_at", flat=True) if sent is not None]
    assert len(times) == 2_500
    assert times == sorted(times)
    # and the targets: the largest church, a median one, a deep page and a contact filter
    targets = phase2_data.targets()
    labels = [target.label for target in targets]
    assert labels[0] == "message list, largest church" and labels[1] == "message list, median church"
    assert targets[0].church_contacts > targets[1].church_contacts
    assert "after=" in targets[2].path and "contact=" in targets[3].path
    deep = int(targets[2].path.rsplit("after=", 1)[1])
    later = messages.filter(church_id=targets[0].church_id, id__gt=deep).count()
    assert later == pytest.approx(targets[0].church_messages * 0.1, abs=2)


def test_another_scale_is_refused_until_the_seeded_churches_are_removed() -> None:
    # given the data at one scale
    phase2_data.seed(scale=0.0002, progress=lambda _line: None)
    # when another scale is asked for, it is refused
    with pytest.raises(RuntimeError, match="another scale"):
        phase2_data.seed(scale=0.0005, progress=lambda _line: None)
    # then remove takes the churches and all of theirs away, and the other scale goes in
    assert phase2_data.remove() == 2
    assert not Message.objects.filter(church__name__startswith=phase2_data.NAME).exists()
    assert phase2_data.seed(scale=0.0005, progress=lambda _line: None).churches == 5
