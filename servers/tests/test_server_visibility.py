import pytest
from django.contrib.auth.models import Group, User

from servers.models import McpServer
from tests.factories import McpServerFactory

pytestmark = pytest.mark.django_db


def test_a_server_visible_several_ways_is_listed_once():
    user = User.objects.create(username="ann")
    first, second = Group.objects.create(name="a"), Group.objects.create(name="b")
    user.groups.add(first, second)
    server = McpServerFactory(scope="private_user", owner=user, group=first)

    visible = McpServer.objects.for_user(user)

    assert list(visible) == [server]
    assert visible.count() == 1


def test_a_user_does_not_see_another_users_private_server():
    owner, other = User.objects.create(username="o"), User.objects.create(username="x")
    McpServerFactory(scope="private_user", owner=owner)

    assert not McpServer.objects.for_user(other).exists()


def test_a_group_member_sees_the_groups_private_server():
    owner, member = User.objects.create(username="o"), User.objects.create(username="m")
    team = Group.objects.create(name="team")
    member.groups.add(team)
    server = McpServerFactory(scope="private_user", owner=owner, group=team)

    assert list(McpServer.objects.for_user(member)) == [server]
