"""What a person sees while containerctl works: a live view on a terminal (ui.live), timestamped
plain lines elsewhere (ui.plain), tables on a terminal or as JSON (ui.tables, over
tabular.columns), and the one rule for which stage output lines are protocol, not for people
(ui.filters). ui sits above report (its summaries are report's tables); report never imports ui.
Nothing here is imported by the runner; rich is imported only by ui.live, and ui.live only when a
terminal shows it (ui.session)."""
