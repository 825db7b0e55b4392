#pragma once
// Umbrella for ssl/heads/ (filled in as components land).
