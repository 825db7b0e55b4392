#pragma once
// Umbrella for ssl/pretext/ (filled in as components land).
