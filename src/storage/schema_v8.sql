-- Schema version 8 (SQLite and PostgreSQL alike): messages rendered when sent.

-- For a message whose chat.post body is made when it is sent (a plain route: not held,
-- muted or split; at most 4 KiB of it), what to render, as JSON (`compose::RenderLater`: the template, the
-- format, the route's mentions, thread and update settings, and the event as the
-- templates see it); `request` is empty until then. Delivery renders it with the
-- templates in force, and the same update that marks the message `sending` stores the
-- body in `request` and clears this.
ALTER TABLE messages ADD COLUMN render TEXT;
