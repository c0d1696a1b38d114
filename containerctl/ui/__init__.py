"""What a person sees while containerctl works: a live view on a terminal (ui.live), timestamped
plain lines elsewhere (ui.plain), aligned tables (ui.tables), and the one rule for which stage
output lines are protocol, not for people (ui.filters). Nothing here is imported by the runner;
rich is imported only by ui.live and only when a terminal shows it."""
