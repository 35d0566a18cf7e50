"""A test's cast on the session's Synapse: a bot account of its own (its limits lifted by the
admin, or Synapse's defaults), people with clients of their own, and the bot process."""

from __future__ import annotations

from pathlib import Path

from matrix_bot import LIFTED, BotProcess
from matrix_people import Loop, Person
from synapse_harness import Synapse, wait_until


class Scene:
    def __init__(
        self,
        synapse: Synapse,
        loop: Loop,
        folder: Path,
        prefix: str,
        lifted: bool = True,
        password: bool = False,
    ) -> None:
        self.synapse, self.loop, self.folder, self.prefix = synapse, loop, folder, prefix
        self.account = synapse.register(f"{prefix}bot", displayname="iwant")
        self.bot_id = self.account.user_id
        if lifted:
            synapse.lift_rate_limits(self.bot_id)
        # With a password the bot logs in itself (a device of its own, kept in its data).
        login = {"MATRIX_ACCESS_TOKEN": "", "MATRIX_PASSWORD": self.account.password}
        self.bot = BotProcess(
            synapse,
            self.account,
            folder / "bot",
            LIFTED if lifted else None,
            env=login if password else None,
        )
        self.people: list[Person] = []

    def person(self, name: str) -> Person:
        account = self.synapse.register(f"{self.prefix}{name.lower()}", displayname=name)
        self.synapse.lift_rate_limits(account.user_id)  # people are not what is tested
        person = Person(self.loop, self.synapse.url, account, self.folder / name, self.bot_id)
        self.people.append(person.start())
        return person

    def joined(self, *rooms: str, timeout: float = 60) -> None:
        """Until the bot has joined every room."""
        wait_until(
            lambda: all(self.bot_id in self.synapse.joined(r) for r in rooms),
            timeout,
            f"the bot to join {rooms}",
        )

    def close(self) -> None:
        self.bot.kill()
        for person in self.people:
            person.stop()
