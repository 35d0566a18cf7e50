"""Test-only errbot plugin: exercises the backend's buttons and send errors from inside a
real errbot process, without depending on the iwant plugin."""

from __future__ import annotations

from errbot import BotPlugin, Message, botcmd


class TgProbe(BotPlugin):
    """Probes for the Telegram backend tests."""

    @botcmd
    def probe_buttons(self, msg: Message, args: str) -> None:
        """Reply with two buttons: a short command and one too long for callback_data."""
        reply = self._bot.build_reply(msg, "Pick one")
        reply.extras["buttons"] = [
            {"label": "Echo", "command": "echo pressed"},
            {"label": "Long", "command": "echo " + "long " * 20},
        ]
        self._bot.send_message(reply)

    @botcmd
    def probe_dm(self, msg: Message, args: str) -> str:
        """Send a direct message to a person id and say how it went."""
        target = self.build_identifier(args.strip())
        try:
            self._bot.send_message(Message("direct hello", frm=self._bot.bot_identifier, to=target))
        except Exception as exc:  # the point: which exception the backend raised
            permanent = getattr(exc, "undeliverable", False)
            return f"failed: {type(exc).__name__} undeliverable={permanent}"
        return "sent"

    @botcmd
    def probe_whoami(self, msg: Message, args: str) -> str:
        """Show how the backend identified the sender."""
        room = getattr(msg.frm, "room", None)
        return (
            f"person={msg.frm.person} fullname={msg.frm.fullname} nick={msg.frm.nick} "
            f"room={room} roundtrip={self.build_identifier(str(msg.frm.person)).person}"
        )
