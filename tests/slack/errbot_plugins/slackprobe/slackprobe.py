"""Test-only errbot plugin: drives the Slack backend's features from inside a real bot
process (buttons, raising sends, group DMs, identifier attributes)."""

from __future__ import annotations

from errbot import BotPlugin, botcmd


class SlackProbe(BotPlugin):
    """Probe commands for the Slack backend tests."""

    activations = 0

    def activate(self) -> None:
        super().activate()
        type(self).activations += 1

    @botcmd
    def probe_whoami(self, msg, args):
        """Who errbot thinks sent this, as the iwant plugin reads it."""
        frm = msg.frm
        room = getattr(frm, "room", None)
        return (
            f"id={self._bot.mode}:{frm.person} str={frm} fullname={frm.fullname} "
            f"nick={frm.nick} tz={getattr(frm, 'timezone', None)} room={room} "
            f"roundtrip={self._bot.build_identifier(str(frm)) == frm} "
            f"is_direct={msg.is_direct}"
        )

    @botcmd
    def probe_buttons(self, msg, args):
        """Reply with a Cancel and a Keep button (to the sender, where they asked)."""
        reply = self._bot.build_reply(msg, f"Request {args or '#1'} is waiting")
        reply.extras["buttons"] = [
            {"label": "Cancel", "command": f"probe clicked cancel {args or '#1'}"},
            {"label": "Keep", "command": f"probe clicked keep {args or '#1'}"},
        ]
        self._bot.send_message(reply)

    @botcmd
    def probe_dmbuttons(self, msg, args):
        """DM a person (the first word, a user id) a message with a button."""
        target = self.build_identifier(args.split()[0])
        reply = self._bot.build_message("A notification with a button")
        reply.to = target
        reply.frm = self._bot.bot_identifier
        reply.extras["buttons"] = [{"label": "I can't make it", "command": "probe clicked leave"}]
        self._bot.send_message(reply)
        return "sent"

    @botcmd
    def probe_clicked(self, msg, args):
        """What a button click runs."""
        return f"clicked {args} by {msg.frm.person} in {getattr(msg.frm, 'room', 'DM')}"

    @botcmd
    def probe_send(self, msg, args):
        """Send text to an identifier and report how sending failed, if it did."""
        target, _, text = args.partition(" ")
        try:
            self.send(self.build_identifier(target), text or "hello")
        except Exception as exc:
            kind = "undeliverable" if getattr(exc, "undeliverable", False) else "transient"
            return f"send failed: {kind} {type(exc).__name__}"
        return "send ok"

    @botcmd
    def probe_file(self, msg, args):
        """Send a person (an identifier) a file: !probe file TARGET NAME SIZE caption…
        Its bytes are ``bytes(i % 256 for i in range(SIZE))``."""
        target, name, size, *caption = args.split()
        content = bytes(i % 256 for i in range(int(size)))
        try:
            self._bot.upload(self.build_identifier(target), name, content, " ".join(caption))
        except Exception as exc:
            kind = "undeliverable" if getattr(exc, "undeliverable", False) else "transient"
            return f"file failed: {kind} {type(exc).__name__}"
        return "file ok"

    @botcmd
    def probe_group(self, msg, args):
        """Open a group DM with the given user ids (``in=CHANNEL`` first: formed there)."""
        ids = args.split()
        room = ids.pop(0)[3:] if ids and ids[0].startswith("in=") else None
        try:
            self._bot.open_group_dm(ids, "You are a group now: <!channel> & co", room)
        except Exception as exc:
            kind = "undeliverable" if getattr(exc, "undeliverable", False) else "transient"
            return f"group failed: {kind} {type(exc).__name__}"
        return "group ok"

    @botcmd
    def probe_activations(self, msg, args):
        """How many times plugins were activated in this process."""
        return f"activations={type(self).activations}"
