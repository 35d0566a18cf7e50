"""Several people talking to one bot on errbot's Test backend."""

from __future__ import annotations

from multiprocessing.pool import ThreadPool

from errbot.backends.base import Message


class Chat:
    """Talk to the bot as anyone; see who received what."""

    def __init__(self, testbot) -> None:
        self.bot = testbot.bot
        self.sent: list[Message] = []
        original = self.bot.send_message

        def capture(msg: Message) -> None:
            self.sent.append(msg)
            original(msg)

        self.bot.send_message = capture

    @property
    def plugin(self):
        return self.bot.plugin_manager.get_plugin_obj_by_name("IWant")

    def say(self, who: str, text: str) -> tuple[str, dict[str, str]]:
        """(the reply to ``who``, {recipient: notification}) for one command."""
        msg = Message(text)
        msg.frm = self.bot.build_identifier(who)
        msg.to = self.bot.bot_identifier
        return self._collect(lambda: self.bot.callback_message(msg))

    def say_in(self, room: str, who: str, text: str) -> tuple[str, dict[str, str]]:
        """The same, said in a room (a group chat) instead of a direct message."""
        # Imported here: pytest registers this module as a plugin of the tests that use it.
        from errbot.backends.test import TestOccupant, TestRoom

        msg = Message(text)
        msg.frm = TestOccupant(who, TestRoom(room, bot=self.bot))
        msg.to = msg.frm.room
        return self._collect(lambda: self.bot.callback_message(msg))

    def tick(self) -> dict[str, str]:
        return self._collect(self.plugin.tick)[1]

    def tick_all(self) -> list[tuple[str, str]]:
        """Every (recipient, notification) one poller round sent, in order."""
        start = len(self.sent)
        self.tick()
        me = str(self.bot.bot_identifier)
        return [(str(m.to), m.body) for m in self.sent[start:] if str(m.to) != me]

    def _collect(self, action) -> tuple[str, dict[str, str]]:
        start = len(self.sent)
        action()
        queue = self.bot.outgoing_message_queue  # errbot's copy; we read self.sent instead
        while not queue.empty():
            queue.get_nowait()
        new = self.sent[start:]
        me = str(self.bot.bot_identifier)
        replies = [m.body for m in new if str(m.to) == me]
        notes = {str(m.to): m.body for m in new if str(m.to) != me}
        assert len(replies) <= 1, replies
        return (replies[0] if replies else ""), notes


def on_sqlite(monkeypatch, testbot) -> Chat:
    """A chat with the plugin on SQLite in errbot's data folder and the repository's
    plugins.cfg (``conftest._environment``); the test ticks the pollers itself."""
    # With BOT_ASYNC off errbot makes no thread pool, but TestBot.stop() closes one.
    testbot.bot.thread_pool = ThreadPool(1)
    return Chat(testbot)
