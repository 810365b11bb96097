"""ChatModel.answer's normalisation of conversations, and its errors naming the bad one."""

from __future__ import annotations

import pytest

from finetunekit.errors import ConfigError
from finetunekit.chat import ChatModel, to_messages


class LastMessage(ChatModel):
    """Answers with the content of each conversation's last message."""

    name = "last-message"

    def generate(self, conversations):
        return [c[-1]["content"] for c in conversations]


def test_answers_are_in_input_order_and_strings_are_user_messages(pm):
    model = LastMessage(plugins=pm)
    assert model.answer(["a", [{"role": "user", "content": "b"}], [{"role": "system", "content": 3}]]) == ["a", "b", "3"]
    assert model.answer([]) == []


@pytest.mark.parametrize(("bad", "message"), [
    ([{"role": "user", "content": "hi"}, {"content": "no role"}], "conversation 2, message 1 must be a mapping"),
    ([{"role": "robot", "content": "beep"}], "conversation 2, message 0 has unknown role 'robot'"),
    ([], r"at least one message \(conversation 2 is empty\)"),
])
def test_an_error_names_the_conversation_of_the_batch(pm, bad, message):
    good = [{"role": "user", "content": "fine"}]
    with pytest.raises(ConfigError, match=message):
        LastMessage(plugins=pm).answer([good, "also fine", bad, good])


def test_to_messages_alone_names_only_the_message():
    with pytest.raises(ConfigError, match=r"^message 0 has unknown role"):
        to_messages([{"role": "robot", "content": "beep"}])
